// WebSocket echo backend shared by every peer: `node ws-echo.ts PORT`.
// Prints "ready" once listening. Message compression is off, as the peers'
// clients do not ask for it and it would only add CPU on the backend core.
import { WebSocketServer } from 'ws';

const port = Number(process.argv[2]);
const wss = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate: false, clientTracking: false, backlog: 4096 });
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', () => undefined);
});
wss.on('listening', () => process.stdout.write('ready\n'));
