"""Blob storage port: content-addressed bytes on local disk or S3, written temp-then-commit."""

from maxgate.blobs.store import BlobStore, BlobWriter, StoredBlob, blob_key

__all__ = ["BlobStore", "BlobWriter", "StoredBlob", "blob_key"]
