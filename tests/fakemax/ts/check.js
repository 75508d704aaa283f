// Drives maxgate's fake MAX Bot API with the official TypeScript client, @maxhub/max-bot-api.
// Usage: node check.js <base URL> <bot token> <work dir>
// The bot side goes through the client; the user side through the fake's control API.
// Prints one JSON line of what it saw; tests/fakemax/test_ts_client.py checks it.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { Bot } = require('@maxhub/max-bot-api');

const [baseUrl, token, workDir] = process.argv.slice(2);

async function control(method, route, body) {
  const res = await fetch(`${baseUrl}/_control${route}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`control ${method} ${route}: ${res.status} ${await res.text()}`);
  return res.json();
}

async function nextUpdate(api, state, type) {
  for (let round = 0; round < 10; round += 1) {
    const { updates, marker } = await api.getUpdates([], { marker: state.marker, timeout: 5 });
    state.marker = marker;
    const found = updates.find((u) => u.update_type === type);
    if (found) return found;
  }
  throw new Error(`no ${type} update`);
}

async function main() {
  const bot = new Bot(token, { clientOptions: { baseUrl } });
  const { api } = bot;
  const out = {};
  const me = await api.getMyInfo();
  out.me = { user_id: me.user_id, is_bot: me.is_bot };

  const user = await control('POST', '/users', { first_name: 'Ts', last_name: 'Tester' });
  const { chat_id: chatId } = await control('POST', `/users/${user.user_id}/start`, {});
  await control('POST', '/messages', { user_id: user.user_id, text: 'hello bot' });

  const state = { marker: undefined };
  const hello = await nextUpdate(api, state, 'message_created');
  out.received_text = hello.message.body.text;

  const text = await api.sendMessageToUser(user.user_id, 'hello human');
  out.sent_text = text.body.text;

  const filePath = path.join(workDir, 'report.txt');
  fs.writeFileSync(filePath, 'a report, uploaded by the official client\n');
  const file = await api.uploadFile({ source: filePath });
  const withFile = await api.sendMessageToChat(chatId, 'the report', {
    attachments: [file.toJson()],
  });
  const sentFile = withFile.body.attachments[0];
  out.sent_file = { type: sentFile.type, filename: sentFile.filename, size: sentFile.size };

  const videoPath = path.join(workDir, 'clip.mp4');
  fs.writeFileSync(videoPath, Buffer.alloc(200 * 1024, 7)); // several ranged chunks
  const video = await api.uploadVideo({ source: videoPath });
  const withVideo = await api.sendMessageToChat(chatId, '', { attachments: [video.toJson()] });
  out.sent_video = withVideo.body.attachments[0].type;

  const image = await api.uploadImage({ source: Buffer.from('not really a png') });
  const withImage = await api.sendMessageToChat(chatId, 'pic', { attachments: [image.toJson()] });
  out.sent_image = withImage.body.attachments[0].type;

  const payload = Buffer.from('bytes the user sent').toString('base64');
  await control('POST', '/messages', {
    user_id: user.user_id,
    attachments: [{ type: 'file', filename: 'from-user.bin', content_base64: payload }],
  });
  const incoming = await nextUpdate(api, state, 'message_created');
  const attachment = incoming.message.body.attachments[0];
  const download = await fetch(attachment.payload.url);
  out.downloaded = {
    status: download.status,
    filename: attachment.filename,
    text: Buffer.from(await download.arrayBuffer()).toString('utf-8'),
  };
  const again = await api.getMessage(incoming.message.body.mid);
  out.refetched_mid = again.body.mid === incoming.message.body.mid;

  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
