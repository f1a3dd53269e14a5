-- wrk2.lua: giltene/wrk2's constant-throughput, coordinated-omission-corrected
-- measurement, run inside Debian's stock `wrk` 4.1 (LuaJIT). Use it through the
-- `loadtest/wrk2` wrapper, which passes the settings in WRK2_* variables and
-- runs wrk with ONE connection per wrk thread.
--
-- Why one connection per thread: a wrk Lua state is per thread and its hooks
-- are not told which connection they serve. With one connection per state the
-- hook sequence of that state IS the connection's request cycle, so every
-- response is matched to its own intended send time exactly (as wrk2 does in
-- C). With several connections per state that matching is impossible.
--
-- Hooks: wrk calls delay() when the connection is up and after each response
-- (only then), so each call after the first marks the completion of the
-- request before it. No response() hook: wrk then need not parse headers into
-- Lua. Status errors and socket errors are counted by wrk itself.
--
-- Schedule (wrk2's): connection i of C sends its k-th request at
--   t0 + i/R + k*C/R          (R = total rate; phases interleave the connections)
-- and records latency = completion time - that intended time (not the actual
-- send time), into an HdrHistogram (1 us .. 24 h, 3 significant digits, the
-- layout wrk2 uses) kept as a sparse table of bucket counts, merged in done().
-- A connection that is late (server stalled) sends its overdue requests at
-- once (WRK2_CATCHUP=0, default): that reproduces the real wrk2's stall anchors
-- (shared/anchors/wrk2-stall, see GENERATOR.md). WRK2_CATCHUP=2 is the 2x
-- catch-up rate found in wrk2's source, which gives ~6x their p90 there.
-- Like wrk2, the first 10 s (+5 ms per connection of a thread) are
-- "calibration": their samples are dropped (WRK2_CALIBRATE=0 keeps them).
--
-- Timing (WRK2_TIMING): "precise" (default) sleeps in request() until the
-- intended time (clock_nanosleep, ~0.1 ms late at most); "wrk2" waits with
-- wrk's millisecond event-loop timer as wrk2 does, which sends 0-2 ms late and
-- so adds ~1 ms to every latency (and to wrk2's own anchors).

local ffi = require("ffi")
local floor, ceil, frexp = math.floor, math.ceil, math.frexp
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } wrk2_timespec;
  int clock_gettime(int clk, wrk2_timespec *tp);
  int clock_nanosleep(int clk, int flags, const wrk2_timespec *req, wrk2_timespec *rem);
  void *malloc(size_t size);
]]
-- CLOCK_REALTIME: the clock of gettimeofday(), by which wrk's event loop (ae)
-- times its timers.
local CLOCK_REALTIME, TIMER_ABSTIME = 0, 1
local ts = ffi.new("wrk2_timespec")
local function now_us()
  ffi.C.clock_gettime(CLOCK_REALTIME, ts)
  return tonumber(ts.tv_sec) * 1e6 + tonumber(ts.tv_nsec) / 1e3
end
local sleep_ts = ffi.new("wrk2_timespec")
local function sleep_until(us)          -- absolute; returns at once if past
  sleep_ts.tv_sec = floor(us / 1e6)
  sleep_ts.tv_nsec = (us - tonumber(sleep_ts.tv_sec) * 1e6) * 1000
  ffi.C.clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, sleep_ts, nil)
end

local function env(name, default) return os.getenv(name) or default end
local function scan_metric(s)            -- "2k" -> 2000, like wrk2's -R
  local n, u = tostring(s):match("^(%d+%.?%d*)(%a*)$")
  local mult = { [""] = 1, k = 1e3, m = 1e6, g = 1e9 }
  return tonumber(n) * mult[u:lower()]
end
local function scan_time(s)              -- "20s", "2m", "1h", "20" -> seconds
  local n, u = tostring(s):match("^(%d+)(%a*)$")
  local mult = { [""] = 1, s = 1, m = 60, h = 3600 }
  return tonumber(n) * mult[u:lower()]
end

local RATE     = scan_metric(env("WRK2_RATE", "1000"))
local CONNS    = tonumber(env("WRK2_CONNECTIONS", "1"))
local THREADS  = tonumber(env("WRK2_THREADS", "1"))
local CATCHUP  = tonumber(env("WRK2_CATCHUP", "0"))
local CALIB    = env("WRK2_CALIBRATE", "1") ~= "0"
local DUR_US   = scan_time(env("WRK2_DURATION", "10s")) * 1e6
local PRECISE  = env("WRK2_TIMING", "precise") ~= "wrk2"
local INTERVAL = 1e6 * CONNS / RATE      -- us between two sends of one connection
local CALIB_US = (10000 + floor(CONNS / THREADS) * 5) * 1000   -- wrk2's calibrate_delay
local BUCKET_US = 100000                 -- Req/Sec sampling interval

-- The request: POST form body when WRK2_BODY is set (wrk adds Content-Length).
if env("WRK2_BODY") then
  wrk.method = "POST"
  wrk.body = env("WRK2_BODY")
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end

-- HdrHistogram index for value v (us): 2048 sub-buckets, half-count 1024,
-- unit 1 -> bucket b = max(0, bitlength(v) - 11), index = b*1024 + (v >> b).
local function hdr_index(v)
  if v < 2048 then return v end
  local _, e = frexp(v)                  -- v = m * 2^e, 0.5 <= m < 1: bitlength = e
  local b = e - 11
  return b * 1024 + floor(v / 2 ^ b)
end

---------------------------------------------------------------------------
-- Main state: setup() per thread, done() at the end.
---------------------------------------------------------------------------
local threads = {}
local shm                                 -- double[1]: t0, shared by all threads

function setup(thread)
  local n = now_us()
  if not shm then shm = ffi.cast("double*", ffi.C.malloc(8)); shm[0] = 0 end
  local i = #threads
  threads[i + 1] = thread
  thread:set("idx", i)
  thread:set("shm_addr", tonumber(ffi.cast("intptr_t", shm)))
  -- wrk creates its threads one after another (~2 ms each) and starts its
  -- clock after the last: so does the schedule (t0). Threads already running
  -- wait for it in their first delay().
  if i == CONNS - 1 then shm[0] = n + 500 end
end

---------------------------------------------------------------------------
-- Thread states (one connection each): delay() and, when precise, request().
---------------------------------------------------------------------------
local t0, phase                          -- set once t0 is known
local k = 0                              -- completed scheduled requests = next slot
local pending = nil                      -- nil | "sched" | "done"
local send_at = 0                        -- when the request for slot k may go (us)
local caught_up, cu_start, cu_k = true, 0, 0
H, P, B = {}, {}, {}                     -- histogram, pre-calibration histogram, rate buckets
N = 0                                    -- scheduled completions
CALIBRATED = false                       -- this thread has passed wrk2's calibration point

local function wait_ms(now, target)      -- ae fires when floor(ms) >= floor(now ms) + d
  if target <= now then return 0 end
  return ceil(target / 1000) - floor(now / 1000)
end

local function record(now)               -- the request for slot k has completed
  local lat = floor(now - (t0 + phase + k * INTERVAL))
  if lat < 0 then lat = 0 end
  local i = hdr_index(lat)
  if CALIB and now < t0 + CALIB_US then
    P[i] = (P[i] or 0) + 1
  else
    CALIBRATED = CALIB
    H[i] = (H[i] or 0) + 1
  end
  local b = floor((now - t0) / BUCKET_US)
  B[b] = (B[b] or 0) + 1
  N = N + 1
  k = k + 1
end

-- wrk calls delay() when the connection is up and after each response (only
-- then), so it is where completions are taken. It returns the ms wrk waits
-- before the request goes out.
function delay()
  local now = now_us()
  if t0 and now >= t0 + DUR_US then      -- the window is over: record nothing,
    pending = "done"                     -- send nothing; idle until wrk stops
    return 60000                         -- (it checks every 100 ms)
  end
  if pending == "sched" then record(now) end
  if not t0 then                         -- first call: block until t0 is set
    local shared = ffi.cast("volatile double*", shm_addr)
    while shared[0] == 0 do sleep_until(now_us() + 1000) end
    t0, phase = shared[0], idx * 1e6 / RATE
    now = now_us()
  end
  send_at = t0 + phase + k * INTERVAL    -- intended send time of slot k
  if send_at > now then
    caught_up = true
  elseif CATCHUP > 0 then                -- behind: catch up at CATCHUP x the rate
    if caught_up then caught_up, cu_start, cu_k = false, now, k end
    send_at = cu_start + (k - cu_k) * INTERVAL / CATCHUP
  end
  if send_at >= t0 + DUR_US then pending = "done"; return 60000 end
  pending = "sched"
  if PRECISE then return 0 end           -- request() sleeps to the microsecond
  return wait_ms(now, send_at)           -- wrk2's way: event-loop timer, ms steps
end

-- Precise timing: sleep in request() until send_at (clock_nanosleep, absolute).
-- Blocking is harmless: the thread has no other connection to serve.
if PRECISE then
  local req
  function request()
    req = req or wrk.format()
    if pending == "sched" then sleep_until(send_at) end
    return req
  end
end

---------------------------------------------------------------------------
-- Report, in wrk2's -L format (wrk.c print_* and hdr_histogram.c, ported).
---------------------------------------------------------------------------
local SUB_HALF = 1024
local function hdr_value(i)              -- value_from_index (lowest equivalent)
  if i < 2 * SUB_HALF then return i end
  local b = floor(i / SUB_HALF) - 1
  return (i - b * SUB_HALF) * 2 ^ b
end
local function hdr_size(i)               -- size of the equivalent value range
  if i < 2 * SUB_HALF then return 1 end
  return 2 ^ (floor(i / SUB_HALF) - 1)
end
local function hdr_highest(i) return hdr_value(i) + hdr_size(i) - 1 end
local function hdr_median(i) return hdr_value(i) + floor(hdr_size(i) / 2) end

local function hdr_new(counts)           -- counts: sparse {index -> count}
  local h = { counts = counts, idx = {}, total = 0 }
  for i, c in pairs(counts) do
    if c > 0 then h.idx[#h.idx + 1] = i; h.total = h.total + c end
  end
  table.sort(h.idx)
  return h
end
local function hdr_merge(into, counts)
  for i, c in pairs(counts) do into[i] = (into[i] or 0) + c end
end
local function hdr_mean(h)
  local s = 0
  for _, i in ipairs(h.idx) do s = s + h.counts[i] * hdr_median(i) end
  return s / h.total
end
local function hdr_stddev(h)
  local m, s = hdr_mean(h), 0
  for _, i in ipairs(h.idx) do local d = hdr_median(i) - m; s = s + d * d * h.counts[i] end
  return math.sqrt(s / h.total)
end
local function hdr_max(h) return h.total > 0 and hdr_value(h.idx[#h.idx]) or 0 end
local function hdr_value_at_percentile(h, p)
  local want = floor((math.min(p, 100) / 100) * h.total + 0.5)
  if want < 1 then want = 1 end
  local seen = 0
  for _, i in ipairs(h.idx) do
    seen = seen + h.counts[i]
    if seen >= want then return hdr_highest(i) end
  end
  return 0
end
local function hdr_within_stdev(h, mean, stdev)   -- stats.c, histogram branch
  if h.total == 0 then return 0 end
  local upper, lower = mean + stdev, mean - stdev
  upper = upper < 0 and ceil(upper) or floor(upper)   -- C (int64_t) truncation
  lower = lower < 0 and ceil(lower) or floor(lower)
  local lc, uc, seen, found = 0, 0, 0, false
  local last = h.idx[#h.idx]
  for i = 0, last do                     -- every index, like hdr_iter (empty ones too)
    seen = seen + (h.counts[i] or 0)
    if lower > hdr_value(i) then lc = seen end
    if upper < hdr_highest(i) then uc = seen; found = true; break end
  end
  if not found then uc = h.total end
  return 100 * (uc - lc) / h.total
end

-- hdr_percentiles_print(h, stdout, 5, 1000.0, CLASSIC)
local function hdr_percentiles_print(h, out)
  out(string.format("%12s %12s %12s %12s\n\n", "Value", "Percentile", "TotalCount", "1/(1-Percentile)"))
  local pos, count_to, to, seen_last = 0, 0, 0.0, false
  local function line(p)
    local i = h.idx[pos]
    local v = i and hdr_highest(i) or 0
    local pc = p / 100
    out(string.format("%12.3f %12f %12d %12.2f\n", v / 1000, pc, count_to, 1 / (1 - pc)))
  end
  while true do
    if count_to >= h.total then          -- no next: the 100% line, once
      if seen_last then break end
      seen_last = true
      line(100.0)
    else
      if pos == 0 then pos = 1; count_to = h.counts[h.idx[1]] end
      while true do
        local cur = (100.0 * count_to) / h.total
        if to <= cur then
          local p = to
          local half = 2 ^ (floor(math.log(100 / (100.0 - to)) / math.log(2)) + 1)
          to = to + 100.0 / (5 * half)
          line(p)
          break
        end
        pos = pos + 1; count_to = count_to + h.counts[h.idx[pos]]
      end
    end
  end
  out(string.format("#[Mean    = %12.3f, StdDeviation   = %12.3f]\n", hdr_mean(h) / 1000, hdr_stddev(h) / 1000))
  out(string.format("#[Max     = %12.3f, Total count    = %12d]\n", hdr_max(h) / 1000, h.total))
  out(string.format("#[Buckets = %12d, SubBuckets     = %12d]\n", 27, 2048))
end

-- units.c
-- "%.2Lf" of n/d for an integer n, d = 1000 or 1e6, as wrk2 prints it: C
-- divides in long double, so where n/d is a tie (x.xx5) the digit depends on
-- which way the 64-bit mantissa rounded n/d; find that with modular arithmetic.
local function fmt2_div(n, d)
  local cents = floor(n * 100 / d)
  if (n * 100) % d == d / 2 then         -- tie: n/d = cents.5 / 100
    local odd = d == 1000 and 125 or 15625 -- n/d = (n/odd) / 2^k: the rounding of n/odd
    local _, e = frexp(n / odd)
    local p = 1
    for _ = 1, 64 - e do p = (p * 2) % odd end
    local r = ((n % odd) * p) % odd      -- remainder of n * 2^(64-e) / odd
    if 2 * r > odd or (r == 0 and cents % 2 == 1) then cents = cents + 1 end
  end
  return string.format("%d.%02d", floor(cents / 100), cents % 100)
end
local function format_units(n, scale, base, units, p, pre)   -- of n / pre
  local d = pre or 1
  local amt, unit, i = n / d, base, 1
  while units[i + 1] and amt >= scale * 0.85 do amt = amt / scale; unit = units[i]; i = i + 1; d = d * scale end
  if p == 2 and n % 1 == 0 and (d == 1000 or d == 1e6) then return fmt2_div(n, d) .. unit end
  return string.format("%." .. p .. "f%s", amt, unit)
end
local function format_time_us(n)
  if n >= 1e6 then return format_units(n, 60, "s", { "m", "h" }, 2, 1e6) end
  return format_units(n, 1000, "us", { "ms", "s" }, 2)
end
local function format_metric(n) return format_units(n, 1000, "", { "k", "M", "G", "T", "P" }, 2) end
local function format_binary(n) return format_units(n, 1024, "", { "K", "M", "G", "T", "P" }, 2) end
local function units(n, fmt, width)      -- wrk.c print_units
  local msg, pad = fmt(n), 2
  if msg:sub(-1):match("%a") then pad = pad - 1 end
  if msg:sub(-2, -2):match("%a") then pad = pad - 1 end
  width = width - pad
  return string.format("%" .. width .. "." .. width .. "s", msg) .. string.rep(" ", pad)
end
local function stats_line(name, mean, stdev, max, within, fmt)
  return string.format("    %-10s", name) .. units(mean, fmt, 8) .. units(stdev, fmt, 10)
      .. units(max, fmt, 9) .. string.format("%8.2f%%\n", within)
end

function done(summary, latency, requests)
  local out = function(s) io.write(s) end
  local hist, groups, buckets, n, bytes_all = {}, {}, {}, 0, summary.bytes
  local calibrated = false
  for g = 1, THREADS do groups[g] = {} end
  for i, t in ipairs(threads) do
    hdr_merge(hist, t:get("H"))
    hdr_merge(groups[(i - 1) % THREADS + 1], t:get("P"))
    hdr_merge(buckets, t:get("B"))
    n = n + t:get("N")
    calibrated = calibrated or t:get("CALIBRATED")
  end
  -- a run that ended before the calibration point reports what it has (wrk2 too)
  if not calibrated then for g = 1, THREADS do hdr_merge(hist, groups[g]) end end
  if env("WRK2_SELFTEST") then           -- test_hdr.py: report these values (us) instead
    hist = {}
    for line in io.lines(env("WRK2_SELFTEST")) do
      local i = hdr_index(tonumber(line)); hist[i] = (hist[i] or 0) + 1
    end
  end
  local h = hdr_new(hist)
  io.write("#wrk2.lua-report\n")          -- the wrapper prints from here on
  -- wrk2 prints one calibration line per thread, after its first 10 s
  for g = 1, THREADS do
    local ph = hdr_new(groups[g])
    if calibrated and ph.total > 0 then
      local interval = math.max(hdr_value_at_percentile(ph, 90.0) / 1000 * 2, 10)
      out(string.format("  Thread calibration: mean lat.: %.3fms, rate sampling interval: %dms\n",
        floor(hdr_mean(ph)) / 1000, floor(interval)))
    end
  end
  out(string.format("  Thread Stats%6s%11s%8s%12s\n", "Avg", "Stdev", "Max", "+/- Stdev"))
  local mean = h.total > 0 and hdr_mean(h) or 0
  local sd = h.total > 0 and hdr_stddev(h) or 0
  out(stats_line("Latency", mean, sd, hdr_max(h), hdr_within_stdev(h, mean, sd), format_time_us))
  -- Req/Sec: per-thread rate samples (100 ms buckets, after calibration)
  local first = calibrated and math.ceil(CALIB_US / BUCKET_US) or 0
  local last = floor(DUR_US / BUCKET_US) - 1
  local xs = {}
  for b = first, last do xs[#xs + 1] = floor((buckets[b] or 0) * (1e6 / BUCKET_US) / THREADS) end
  local rm, rs, rmax, rw = 0, 0, 0, 0
  if #xs > 0 then
    for _, x in ipairs(xs) do rm = rm + x; if x > rmax then rmax = x end end
    rm = rm / #xs
    for _, x in ipairs(xs) do rs = rs + (x - rm) ^ 2 end
    rs = #xs > 1 and math.sqrt(rs / (#xs - 1)) or 0
    for _, x in ipairs(xs) do if x >= rm - rs and x <= rm + rs then rw = rw + 1 end end
    rw = 100 * rw / #xs
  end
  out(stats_line("Req/Sec", rm, rs, rmax, rw, format_metric))
  if env("WRK2_LATENCY", "0") == "1" then
    out("  Latency Distribution (HdrHistogram - Recorded Latency)\n")
    for _, p in ipairs({ 50.0, 75.0, 90.0, 99.0, 99.9, 99.99, 99.999, 100.0 }) do
      out(string.format("%7.3f%%", p) .. units(hdr_value_at_percentile(h, p), format_time_us, 10) .. "\n")
    end
    out("\n  Detailed Percentile spectrum:\n")
    hdr_percentiles_print(h, out)
    out("----------------------------------------------------------\n")
  end
  -- Throughput is counted over the schedule's window [t0, t0 + duration]:
  -- responses completed in it, over its length (wrk itself takes 0-100 ms
  -- more to stop its threads; nothing is sent then).
  local bytes = summary.requests > 0 and bytes_all * n / summary.requests or 0
  out(string.format("  %d requests in %s, %sB read\n", n, format_time_us(DUR_US), format_binary(bytes)))
  local e = summary.errors
  if e.connect + e.read + e.write + e.timeout > 0 then
    out(string.format("  Socket errors: connect %d, read %d, write %d, timeout %d\n",
      e.connect, e.read, e.write, e.timeout))
  end
  if e.status > 0 then out(string.format("  Non-2xx or 3xx responses: %d\n", e.status)) end
  out(string.format("Requests/sec: %9.2f\n", n / (DUR_US / 1e6)))
  out(string.format("Transfer/sec: %10sB\n", format_binary(bytes / (DUR_US / 1e6))))
end
