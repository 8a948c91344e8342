import assert from "node:assert/strict";
import { UsageError } from "./cli.ts";
import { parseTransparentArgs } from "./transparent_cli.ts";
import { unifiedRoot } from "./bpf/cgroup.ts";

const bad = (args: string[], re: RegExp) =>
  assert.throws(() => parseTransparentArgs(args), (e) => e instanceof UsageError && re.test(e.message));

Deno.test("toa-transparent: refuses the root cgroup, paths outside /sys/fs/cgroup, pins outside bpffs", () => {
  bad(["--cgroup", unifiedRoot(), "--trust", "198.18.2.1"], /--cgroup: .*the root cgroup/);
  bad(["--cgroup", "/sys/fs/cgroup", "--trust", "198.18.2.1"], /--cgroup: /);
  bad(["--cgroup", "/tmp", "--trust", "198.18.2.1"], /--cgroup: \/tmp: not under \/sys\/fs\/cgroup/);
  bad(["--trust", "198.18.2.1"], /--cgroup is required/);
  bad(["--detach", "/tmp/x"], /--detach: expected a directory under \/sys\/fs\/bpf\//);
  bad(["--detach", "/sys/fs/bpf/x", "--cgroup", "/sys/fs/cgroup/x"], /--detach takes no --cgroup/);
  assert.deepEqual(parseTransparentArgs(["--detach", "/sys/fs/bpf/x/"]), {
    mode: "detach",
    pin: "/sys/fs/bpf/x",
  });
  assert.equal(parseTransparentArgs(["--help"]), null);
});

Deno.test({
  name: "toa-transparent: a cgroup of our own is accepted; --trust is checked",
  ignore: Deno.uid() !== 0,
}, () => {
  const dir = `${unifiedRoot()}/toa-transparent-test-${Deno.pid}`;
  Deno.mkdirSync(dir);
  try {
    bad(["--cgroup", dir, "--trust", "300.1.1.1"], /--trust: /);
    const many = Array.from({ length: 17 }, (_, i) => `198.18.2.${i}`).join(",");
    bad(["--cgroup", dir, "--trust", many], /at most 16/);
    const a = parseTransparentArgs(["--cgroup", dir, "--trust", "198.18.2.0/24", "--pin", "/sys/fs/bpf/t"]);
    assert.equal(a?.mode, "run");
    assert.equal(a?.mode === "run" && a.pin, "/sys/fs/bpf/t");
  } finally {
    Deno.removeSync(dir);
  }
});
