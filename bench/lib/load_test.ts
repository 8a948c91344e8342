import assert from "node:assert/strict";
import { parseAb, parseAbPercentiles, parseIperf3, parseWrk, wrkMicros } from "./load.ts";

const AB = `Server Software:        nginx/1.22.1
Server Hostname:        198.18.0.10
Server Port:            80

Document Path:          /small.html
Document Length:        128 bytes

Concurrency Level:      32
Time taken for tests:   2.000 seconds
Complete requests:      7148
Failed requests:        3
   (Connect: 0, Receive: 0, Length: 3, Exceptions: 0)
Non-2xx responses:      2
Total transferred:      2651908 bytes
HTML transferred:       914944 bytes
Requests per second:    3573.90 [#/sec] (mean)
Time per request:       8.954 [ms] (mean)
Time per request:       0.280 [ms] (mean, across all concurrent requests)
Transfer rate:          1294.87 [Kbytes/sec] received
`;

const WRK = `Running 1s test @ http://198.18.0.10/small.html
  1 threads and 1 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   185.12us   40.01us   1.20ms   90.00%
    Req/Sec     5.10k   200.00     5.40k    70.00%
  Latency Distribution
     50%  182.00us
     75%  190.00us
     90%  210.00us
     99%  400.00us
  5100 requests in 1.00s, 1.80MB read
  Socket errors: connect 0, read 1, write 0, timeout 2
Requests/sec:   5099.50
Transfer/sec:      1.80MB
`;

Deno.test("parseAb: rate, completions, mean, failures including non-2xx", () => {
  assert.deepEqual(parseAb(AB), { perSecond: 3573.9, complete: 7148, failed: 5, meanMs: 8.954 });
});

Deno.test("parseAb: no report is an error naming ab", () => {
  assert.throws(() => parseAb("apr_socket_connect(): Connection refused (111)\n"), /^Error: ab: no report/);
});

Deno.test("parseWrk: p50, average, rate, socket errors", () => {
  assert.deepEqual(parseWrk(WRK), { p50Us: 182, avgUs: 185.12, perSecond: 5099.5, errors: 3 });
});

Deno.test("wrkMicros: every unit wrk prints", () => {
  assert.equal(wrkMicros("81.00us"), 81);
  assert.equal(wrkMicros("1.50ms"), 1500);
  assert.equal(wrkMicros("2.00s"), 2_000_000);
  assert.throws(() => wrkMicros("3h"), /unknown duration/);
});

Deno.test("parseIperf3: received rate and retransmits; iperf3's error passes through", () => {
  const ok = JSON.stringify({
    end: { sum_sent: { retransmits: 17, bits_per_second: 4.9e9 }, sum_received: { bits_per_second: 4.8e9 } },
  });
  assert.deepEqual(parseIperf3(ok), { bitsPerSecond: 4.8e9, retransmits: 17 });
  const bad = JSON.stringify({ start: {}, error: "unable to connect to server: Connection refused" });
  assert.throws(() => parseIperf3(bad), /iperf3: unable to connect/);
  assert.throws(() => parseIperf3("iperf3: error"), /no JSON output/);
});

Deno.test("parseAbPercentiles: percent → ms from ab -e", () => {
  const p = parseAbPercentiles("Percentage served,Time in ms\n0,0.181\n50,0.215\n99,1.402\n100,3.5\n");
  assert.equal(p.get(50), 0.215);
  assert.equal(p.get(99), 1.402);
  assert.equal(p.size, 4);
});
