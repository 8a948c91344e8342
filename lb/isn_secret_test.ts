import assert from "node:assert/strict";
import { isnSecretPath, loadIsnSecret } from "./isn_secret.ts";

Deno.test("the ISN secret is created once (mode 0600) and read back unchanged", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = isnSecretPath(`${dir}/sub/fnat0.sock`, "fnat0");
    assert.equal(path, `${dir}/sub/fnat0.isn-secret`);
    const a = await loadIsnSecret(path);
    const b = await loadIsnSecret(path);
    assert.deepEqual(b, a);
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    await Deno.writeFile(path, new Uint8Array(3)); // damaged: replaced by a fresh secret
    const c = await loadIsnSecret(path);
    assert.equal((await Deno.readFile(path)).length, 16);
    assert.notDeepEqual(c, a);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
