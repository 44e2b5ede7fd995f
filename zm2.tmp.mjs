import fs from 'node:fs';
const st = (t) => { globalThis.gc(); const s = fs.readFileSync('/proc/self/status', 'utf8'); console.log(t, s.match(/RssAnon.*|RssFile.*/g).join(' ').replace(/\s+/g, ' '), (process.memoryUsage().heapUsed / 1048576).toFixed(2), process.moduleLoadList.length); };
st('start');
await import(process.argv[2]);
st('after ' + process.argv[2]);
