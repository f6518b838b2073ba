// Compiles contracts/src/*.sol with the pinned solc-js (package.json) into
// contracts/build/<Name>.abi and <Name>.bin. Fixed settings, sorted inputs:
// the output is byte-for-byte reproducible.
'use strict';
const fs = require('fs');
const path = require('path');
const solc = require('solc');

const srcDir = path.join(__dirname, 'src');
const outDir = path.join(__dirname, 'build');
const contracts = ['MystToken', 'Registry', 'ConsumerChannel', 'Hermes'];

const sources = {};
for (const f of fs.readdirSync(srcDir).filter((f) => f.endsWith('.sol')).sort()) {
  sources[f] = { content: fs.readFileSync(path.join(srcDir, f), 'utf8') };
}
const input = {
  language: 'Solidity',
  sources,
  settings: {
    optimizer: { enabled: true, runs: 10000 },
    evmVersion: 'cancun',
    viaIR: true,
    metadata: { bytecodeHash: 'none', appendCBOR: false },
    outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } },
  },
};
const out = JSON.parse(solc.compile(JSON.stringify(input)));
let failed = false;
for (const e of out.errors || []) {
  process.stderr.write(e.formattedMessage + '\n');
  if (e.severity === 'error') failed = true;
}
if (failed) process.exit(1);
fs.mkdirSync(outDir, { recursive: true });
for (const name of contracts) {
  const c = out.contracts[name + '.sol'][name];
  fs.writeFileSync(path.join(outDir, name + '.abi'), JSON.stringify(c.abi, null, 1) + '\n');
  fs.writeFileSync(path.join(outDir, name + '.bin'), c.evm.bytecode.object + '\n');
}
process.stdout.write('solc ' + solc.version() + ': built ' + contracts.join(', ') + '\n');
