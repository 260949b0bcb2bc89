// The jest node environment with the host's typed-array constructors: native addons (onnxruntime-node)
// return host-realm Float32Arrays, which fail `instanceof` checks against the test realm's own.
const NodeEnvironment = require('jest-environment-node').TestEnvironment;

const SHARED = ['Float32Array', 'Float64Array', 'Int32Array', 'BigInt64Array', 'Uint8Array', 'Int8Array', 'Uint16Array', 'Int16Array', 'Uint32Array', 'BigUint64Array', 'ArrayBuffer'];

class HostTypedArrayEnvironment extends NodeEnvironment {
  constructor(config, context) {
    super(config, context);
    for (const name of SHARED) this.global[name] = globalThis[name];
  }
}

module.exports = HostTypedArrayEnvironment;
