// WebSocket test peers for integration tests, on Debian's node-ws (run with
// NODE_PATH=/usr/share/nodejs).
//   node ws_echo.js server PORT           an echo origin on 127.0.0.1:PORT
//   node ws_echo.js client URL HOST N     sends N messages (binary and text, sizes up to 64 KiB)
//                                         with Host: HOST, checks every echo, closes with 1000,
//                                         prints "ok N" and exits 0, or says what went wrong
//                                         and exits 1.
'use strict';
const WebSocket = require('ws');
const crypto = require('crypto');

const [mode, a, b, c] = process.argv.slice(2);
if (mode === 'server') {
    const wss = new WebSocket.Server({ host: '127.0.0.1', port: Number(a) });
    wss.on('connection', (ws) => {
        ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    });
    wss.on('listening', () => console.log('listening'));
} else if (mode === 'client') {
    const n = Number(c);
    const ws = new WebSocket(a, { headers: { Host: b }, maxPayload: 1 << 20 });
    let sent = 0, got = 0, expect = null;
    const fail = (why) => { console.log('FAIL ' + why); process.exit(1); };
    const next = () => {
        // Mostly small messages, every 100th a large one; alternate binary and text.
        const size = sent % 100 === 99 ? 65536 : 1 + (sent * 37) % 2000;
        const binary = sent % 2 === 0;
        expect = binary ? crypto.randomBytes(size) : crypto.randomBytes(size).toString('hex');
        ws.send(expect, { binary });
        sent++;
    };
    ws.on('open', next);
    ws.on('message', (data, isBinary) => {
        const want = Buffer.isBuffer(expect) ? expect : Buffer.from(expect);
        if (!Buffer.from(data).equals(want) || isBinary !== Buffer.isBuffer(expect)) {
            fail(`message ${got} differs`);
        }
        got++;
        if (got === n) {
            ws.close(1000, 'done');
        } else {
            next();
        }
    });
    ws.on('close', (code) => {
        if (got !== n || code !== 1000) {
            fail(`closed with ${code} after ${got} of ${n}`);
        }
        console.log('ok ' + got);
        process.exit(0);
    });
    ws.on('error', (e) => fail(e.message));
    ws.on('unexpected-response', (req, res) => fail(`HTTP ${res.statusCode}`));
} else {
    console.log('usage: ws_echo.js server PORT | client URL HOST N');
    process.exit(2);
}
