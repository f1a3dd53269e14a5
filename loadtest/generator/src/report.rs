//! The report, in giltene/wrk2's format (wrk.c print_*, stats.c, units.c and
//! hdr_histogram.c's percentile print), byte for byte where it can be:
//! loadtest/hdr.py, the plots and ../shared/anchors read this format.
//! The histogram is the hdrhistogram crate's; what wrk2's C computes from it
//! (mean from median-equivalent values, value at percentile, +/- Stdev) is
//! recomputed here the C way, since the crate's own versions round differently.

use hdrhistogram::Histogram;

use crate::{new_hist, Config, Errors, ThreadResult, BUCKET_US, CALIBRATE_DELAY_US};

/// A histogram's recorded buckets: (lowest value, highest value, count), ascending.
struct Hdr {
    b: Vec<(u64, u64, u64)>,
    total: u64,
}

impl Hdr {
    fn new(h: &Histogram<u64>) -> Hdr {
        let b: Vec<_> = h
            .iter_recorded()
            .map(|v| (h.lowest_equivalent(v.value_iterated_to()), v.value_iterated_to(), v.count_at_value()))
            .collect();
        Hdr { total: h.len(), b }
    }

    fn mean(&self) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        // hdr_mean: sum of count * median-equivalent value, in integers
        let s: u128 = self.b.iter().map(|&(lo, hi, n)| (lo + (hi - lo + 1) / 2) as u128 * n as u128).sum();
        s as f64 / self.total as f64
    }

    fn stddev(&self) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        let m = self.mean();
        let s: f64 = self
            .b
            .iter()
            .map(|&(lo, hi, n)| {
                let d = (lo + (hi - lo + 1) / 2) as f64 - m;
                d * d * n as f64
            })
            .sum();
        (s / self.total as f64).sqrt()
    }

    /// hdr_max as wrk2 prints it: the lowest value of the top bucket.
    fn max(&self) -> u64 {
        self.b.last().map_or(0, |b| b.0)
    }

    fn value_at_percentile(&self, p: f64) -> u64 {
        let want = ((p.min(100.0) / 100.0) * self.total as f64 + 0.5) as u64;
        let want = want.max(1);
        let mut seen = 0;
        for &(_, hi, n) in &self.b {
            seen += n;
            if seen >= want {
                return hi;
            }
        }
        0
    }

    /// stats.c stats_within_stdev, histogram branch: the share of values
    /// within mean +/- stdev, counted over buckets as hdr_iter walks them.
    fn within_stdev(&self, h: &Histogram<u64>, mean: f64, stdev: f64) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        let upper = (mean + stdev).trunc(); // C's (int64_t) cast
        let lower = (mean - stdev).trunc();
        // the walk stops at the first bucket (empty or not) whose highest value
        // exceeds upper: the one holding upper, or the next if upper is its top
        let stop = if upper < 0.0 {
            0
        } else {
            let u = upper as u64;
            let hu = h.highest_equivalent(u);
            if hu > u { hu } else { h.highest_equivalent(u + 1) }
        };
        let (mut lc, mut uc) = (0, 0);
        for &(lo, hi, n) in &self.b {
            if hi > stop {
                break;
            }
            uc += n;
            if lower > lo as f64 {
                lc = uc;
            }
        }
        100.0 * (uc - lc) as f64 / self.total as f64
    }

    /// hdr_percentiles_print(h, stdout, 5, 1000.0, CLASSIC)
    fn percentiles_print(&self, out: &mut String) {
        out.push_str(&format!("{:>12} {:>12} {:>12} {:>12}\n\n", "Value", "Percentile", "TotalCount", "1/(1-Percentile)"));
        let (mut pos, mut count_to, mut to, mut seen_last) = (0usize, 0u64, 0.0f64, false);
        let line = |out: &mut String, pos: usize, count_to: u64, p: f64| {
            let v = if pos > 0 { self.b[pos - 1].1 } else { 0 };
            let pc = p / 100.0;
            out.push_str(&format!("{:12.3} {:12.6} {:12} {:12.2}\n", v as f64 / 1000.0, pc, count_to, 1.0 / (1.0 - pc)));
        };
        loop {
            if count_to >= self.total {
                if seen_last {
                    break;
                }
                seen_last = true;
                line(out, pos, count_to, 100.0);
            } else {
                if pos == 0 {
                    pos = 1;
                    count_to = self.b[0].2;
                }
                loop {
                    let cur = (100.0 * count_to as f64) / self.total as f64;
                    if to <= cur {
                        let p = to;
                        let half = 2f64.powf(((100.0 / (100.0 - to)).ln() / 2f64.ln()).floor() + 1.0);
                        to += 100.0 / (5.0 * half);
                        line(out, pos, count_to, p);
                        break;
                    }
                    pos += 1;
                    count_to += self.b[pos - 1].2;
                }
            }
        }
        out.push_str(&format!("#[Mean    = {:12.3}, StdDeviation   = {:12.3}]\n", self.mean() / 1000.0, self.stddev() / 1000.0));
        out.push_str(&format!("#[Max     = {:12.3}, Total count    = {:12}]\n", self.max() as f64 / 1000.0, self.total));
        out.push_str(&format!("#[Buckets = {:12}, SubBuckets     = {:12}]\n", 27, 2048));
    }
}

/// "%.2Lf" of n/d for an integer n and d = 1000 or 1e6, as wrk2 prints it: C
/// divides in long double (64-bit mantissa), so at a tie (x.xx5 exactly) the
/// digit depends on which way n/d was rounded; found here in integers.
fn fmt2_div(n: u64, d: u64) -> String {
    let mut cents = n as u128 * 100 / d as u128;
    if (n as u128 * 100) % d as u128 == d as u128 / 2 {
        let odd: u128 = if d == 1000 { 125 } else { 15625 }; // d = odd * 2^k
        // n/odd = m * 2^e, 0.5 <= m < 1: e = bit length of floor(n/odd), +1 at exact powers
        let n = n as u128;
        let mut e: i32 = 0;
        while odd << e.max(0) as u32 <= n {
            e += 1;
        }
        if e > 64 {
            return format!("{:.2}", n as f64 / d as f64);
        }
        let mut p: u128 = 1;
        for _ in 0..(64 - e) {
            p = (p * 2) % odd;
        }
        let r = ((n % odd) * p) % odd; // remainder of n * 2^(64-e) / odd
        if 2 * r > odd || (r == 0 && cents % 2 == 1) {
            cents += 1;
        }
    }
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// units.c format_units (n / pre in units of scale), p decimals.
fn format_units(n: f64, scale: f64, base: &str, units: &[&str], p: usize, pre: u64) -> String {
    let mut d = pre as f64;
    let mut amt = n / d;
    let mut unit = base;
    let mut i = 0;
    while i + 1 < units.len() && amt >= scale * 0.85 {
        amt /= scale;
        unit = units[i];
        i += 1;
        d *= scale;
    }
    if p == 2 && n.fract() == 0.0 && n >= 0.0 && (d == 1000.0 || d == 1e6) {
        return format!("{}{unit}", fmt2_div(n as u64, d as u64));
    }
    format!("{amt:.p$}{unit}")
}

pub fn format_time_us(n: f64) -> String {
    if n >= 1e6 {
        return format_units(n, 60.0, "s", &["m", "h"], 2, 1_000_000);
    }
    format_units(n, 1000.0, "us", &["ms", "s"], 2, 1)
}

pub fn format_time_s(n: u64) -> String {
    format_units(n as f64, 60.0, "s", &["m", "h"], 0, 1)
}

fn format_metric(n: f64) -> String {
    format_units(n, 1000.0, "", &["k", "M", "G", "T", "P"], 2, 1)
}

fn format_binary(n: f64) -> String {
    format_units(n, 1024.0, "", &["K", "M", "G", "T", "P"], 2, 1)
}

/// wrk.c print_units: right-aligned in width, units padded to 2 characters.
fn units(n: f64, fmt: fn(f64) -> String, width: usize) -> String {
    let msg = fmt(n);
    let b = msg.as_bytes();
    let mut pad = 2;
    if b.last().map_or(false, |c| c.is_ascii_alphabetic()) {
        pad -= 1;
    }
    if b.len() >= 2 && b[b.len() - 2].is_ascii_alphabetic() {
        pad -= 1;
    }
    let w = width - pad;
    let msg: String = msg.chars().take(w).collect();
    format!("{msg:>w$}{}", " ".repeat(pad))
}

fn stats_line(name: &str, mean: f64, stdev: f64, max: f64, within: f64, fmt: fn(f64) -> String) -> String {
    format!("    {name:<10}{}{}{}{within:8.2}%\n", units(mean, fmt, 8), units(stdev, fmt, 10), units(max, fmt, 9))
}

pub fn print(cfg: &Config, results: &[ThreadResult]) {
    let mut out = String::new();
    let mut hist = new_hist();
    let (mut n, mut bytes) = (0u64, 0u64);
    let mut e = Errors::default();
    let calibrated = results.iter().any(|r| r.calibrated);
    let mut buckets = vec![0u64; results[0].buckets.len()];
    for r in results {
        hist.add(&r.hist).expect("same bounds");
        if !calibrated {
            // a run that ended before the calibration point reports what it has (wrk2 too)
            hist.add(&r.pre).expect("same bounds");
        }
        for (b, x) in buckets.iter_mut().zip(&r.buckets) {
            *b += x;
        }
        n += r.completed;
        bytes += r.bytes;
        e.connect += r.errors.connect;
        e.read += r.errors.read;
        e.write += r.errors.write;
        e.timeout += r.errors.timeout;
        e.status += r.errors.status;
    }
    if std::env::var_os("WRK2_SELFTEST").is_some() {
        hist = results[0].hist.clone();
    }
    // wrk2 prints one calibration line per thread, after its first 10 s
    if calibrated {
        for r in results {
            let ph = Hdr::new(&r.pre);
            if ph.total > 0 {
                let interval = (ph.value_at_percentile(90.0) as f64 / 1000.0 * 2.0).max(10.0);
                out.push_str(&format!(
                    "  Thread calibration: mean lat.: {:.3}ms, rate sampling interval: {}ms\n",
                    ph.mean().floor() / 1000.0,
                    interval.floor() as u64
                ));
            }
        }
    }
    let h = Hdr::new(&hist);
    out.push_str(&format!("  Thread Stats{:>6}{:>11}{:>8}{:>12}\n", "Avg", "Stdev", "Max", "+/- Stdev"));
    let (mean, sd) = (h.mean(), h.stddev());
    out.push_str(&stats_line("Latency", mean, sd, h.max() as f64, h.within_stdev(&hist, mean, sd), format_time_us));
    // Req/Sec: per-thread rate samples (100 ms buckets, after calibration)
    let conns_per_thread = (cfg.conns / cfg.threads) as u64;
    let calib_us = CALIBRATE_DELAY_US + conns_per_thread * 5000;
    let first = if calibrated { calib_us.div_ceil(BUCKET_US) } else { 0 } as usize;
    let last = (cfg.duration_us / BUCKET_US) as usize;
    let xs: Vec<f64> = (first..last)
        .map(|b| (buckets.get(b).copied().unwrap_or(0) as f64 * (1e6 / BUCKET_US as f64) / cfg.threads as f64).floor())
        .collect();
    let (mut rm, mut rs, mut rmax, mut rw) = (0.0, 0.0, 0.0f64, 0.0);
    if !xs.is_empty() {
        rm = xs.iter().sum::<f64>() / xs.len() as f64;
        rmax = xs.iter().cloned().fold(0.0, f64::max);
        if xs.len() > 1 {
            rs = (xs.iter().map(|x| (x - rm) * (x - rm)).sum::<f64>() / (xs.len() - 1) as f64).sqrt();
        }
        rw = 100.0 * xs.iter().filter(|&&x| x >= rm - rs && x <= rm + rs).count() as f64 / xs.len() as f64;
    }
    out.push_str(&stats_line("Req/Sec", rm, rs, rmax, rw, format_metric));
    if cfg.latency {
        out.push_str("  Latency Distribution (HdrHistogram - Recorded Latency)\n");
        for p in [50.0, 75.0, 90.0, 99.0, 99.9, 99.99, 99.999, 100.0] {
            out.push_str(&format!("{p:7.3}%{}\n", units(h.value_at_percentile(p) as f64, format_time_us, 10)));
        }
        out.push_str("\n  Detailed Percentile spectrum:\n");
        h.percentiles_print(&mut out);
        out.push_str("----------------------------------------------------------\n");
    }
    // Throughput is counted over the schedule's window [t0, t0 + duration]:
    // responses completed in it, over its length.
    let dur_s = cfg.duration_us as f64 / 1e6;
    out.push_str(&format!("  {n} requests in {}, {}B read\n", format_time_us(cfg.duration_us as f64), format_binary(bytes as f64)));
    if e.connect + e.read + e.write + e.timeout > 0 {
        out.push_str(&format!(
            "  Socket errors: connect {}, read {}, write {}, timeout {}\n",
            e.connect, e.read, e.write, e.timeout
        ));
    }
    if e.status > 0 {
        out.push_str(&format!("  Non-2xx or 3xx responses: {}\n", e.status));
    }
    out.push_str(&format!("Requests/sec: {:9.2}\n", n as f64 / dur_s));
    out.push_str(&format!("Transfer/sec: {:>10}B\n", format_binary(bytes as f64 / dur_s)));
    print!("{out}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_as_wrk2_prints_them() {
        assert_eq!(format_time_us(1_010_000.0), "1.01s");
        assert_eq!(format_time_us(917_500.0), "917.50ms");
        assert_eq!(format_time_us(20_000_000.0), "20.00s");
        assert_eq!(format_time_s(20), "20s");
        assert_eq!(format_time_s(120), "2m");
        assert_eq!(units(1_010_000.0, format_time_us, 10), "    1.01s ");
        assert_eq!(units(1100.0, format_time_us, 10), "    1.10ms");
    }
}
