// probe.ts — `forkbox probe`: can this machine run forkbox VMs? Prints the
// KVM facts the VMM sees (API version, caps, TSC, PVM) and whether the guest
// runtime and test guests are built. Exit 0 when VMs can run, 1 otherwise.
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { runtimeElf, testGuestDir } from '../lib/paths.js';
import { isPvmHost, probe } from '../vmm/vmm.js';

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    process.stdout.write('usage: forkbox probe [--json]\n');
    return 0;
  }
  const p = probe();
  const out = {
    available: p.available,
    ...(p.reason ? { reason: p.reason } : {}),
    ...(p.info ? { kvm: p.info } : {}),
    pvmModule: isPvmHost(),
    runtimeBuilt: existsSync(runtimeElf),
    testGuestsBuilt: existsSync(`${testGuestDir}/echo.elf`),
  };
  if (values.json) {
    process.stdout.write(JSON.stringify(out, null, 2) + '\n');
  } else {
    process.stdout.write(`kvm: ${p.available ? 'available' : `unavailable (${p.reason})`}\n`);
    if (p.info) {
      const i = p.info;
      process.stdout.write(`  api version ${i.kvmApiVersion}, vcpu mmap ${i.vcpuMmapSize} B, tsc ${i.tscKhz} kHz\n` +
        `  caps: immediate_exit=${i.capImmediateExit} readonly_mem=${i.capReadonlyMem} xsave2=${i.capXsave2} xcrs=${i.capXcrs}\n` +
        `  pvm: ${i.isPvm}\n`);
    }
    process.stdout.write(`guest runtime: ${out.runtimeBuilt ? 'built' : 'missing (npm install)'}\n`);
    process.stdout.write(`test guests: ${out.testGuestsBuilt ? 'built' : 'missing (make -C native guests)'}\n`);
  }
  return p.available ? 0 : 1;
}
