//! The statistics of `rift compare`, pure (no I/O, no clock): a sample's
//! median and spread, and for two samples the difference of their medians
//! with a seeded percentile-bootstrap confidence interval, a Mann–Whitney U
//! p-value as a cross-check, and how many runs per side would narrow the
//! interval below a threshold. docs/compare.md says why these.

use serde::Serialize;

/// How many bootstrap resamples each interval is drawn from.
pub const RESAMPLES: usize = 2000;

/// Median and spread of one sample.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    pub n: usize,
    pub median: f64,
    /// First and third quartiles (linear interpolation between order
    /// statistics, as R's default type 7).
    pub q1: f64,
    pub q3: f64,
    pub min: f64,
    pub max: f64,
}

impl Summary {
    /// `None` for an empty sample or one holding a NaN.
    pub fn of(sample: &[f64]) -> Option<Summary> {
        let s = sorted(sample)?;
        Some(Summary {
            n: s.len(),
            median: quantile_sorted(&s, 0.5),
            q1: quantile_sorted(&s, 0.25),
            q3: quantile_sorted(&s, 0.75),
            min: s[0],
            max: s[s.len() - 1],
        })
    }

    pub fn iqr(&self) -> f64 {
        self.q3 - self.q1
    }
}

/// The sample sorted; `None` when empty or when it holds a NaN.
fn sorted(sample: &[f64]) -> Option<Vec<f64>> {
    if sample.is_empty() || sample.iter().any(|v| v.is_nan()) {
        return None;
    }
    let mut s = sample.to_vec();
    s.sort_by(f64::total_cmp);
    Some(s)
}

/// Quantile `q` of a sorted, non-empty sample (type 7).
fn quantile_sorted(s: &[f64], q: f64) -> f64 {
    let h = (s.len() - 1) as f64 * q.clamp(0.0, 1.0);
    let lo = h.floor() as usize;
    let hi = h.ceil() as usize;
    let (a, b) = (s[lo], s[hi.min(s.len() - 1)]);
    if a == b {
        a
    } else {
        a + (h - lo as f64) * (b - a)
    }
}

/// The median; `None` for an empty sample.
pub fn median(sample: &[f64]) -> Option<f64> {
    sorted(sample).map(|s| quantile_sorted(&s, 0.5))
}

/// A two-sided confidence interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Interval {
    pub lo: f64,
    pub hi: f64,
}

impl Interval {
    pub fn contains(&self, v: f64) -> bool {
        self.lo <= v && v <= self.hi
    }

    pub fn half_width(&self) -> f64 {
        (self.hi - self.lo) / 2.0
    }
}

/// Two samples compared: NEW − BASE.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Difference {
    /// median(new) − median(base).
    pub diff: f64,
    /// `diff` relative to the base median; `None` when that is 0.
    pub relative: Option<f64>,
    /// Percentile-bootstrap interval of `diff` at `confidence`; `None`
    /// when a side has fewer than [`MIN_RUNS`] values.
    pub ci: Option<Interval>,
    pub confidence: f64,
    /// Two-sided Mann–Whitney U p-value (normal approximation with tie
    /// correction); `None` under [`MIN_RUNS`] per side.
    pub mann_whitney_p: Option<f64>,
}

/// Fewer values than this on a side: no interval at all.
pub const MIN_RUNS: usize = 3;

/// NEW − BASE of the medians, with its bootstrap interval and the
/// Mann–Whitney p-value. `None` when a side is empty or holds a NaN.
/// Deterministic: the bootstrap's seed is derived from the data.
pub fn difference(base: &[f64], new: &[f64], confidence: f64) -> Option<Difference> {
    let (b, n) = (sorted(base)?, sorted(new)?);
    let (mb, mn) = (quantile_sorted(&b, 0.5), quantile_sorted(&n, 0.5));
    let diff = mn - mb;
    let relative = (mb != 0.0 && mb.is_finite()).then(|| diff / mb.abs());
    let enough = b.len() >= MIN_RUNS && n.len() >= MIN_RUNS;
    Some(Difference {
        diff,
        relative,
        ci: enough.then(|| bootstrap(&b, &n, confidence, RESAMPLES)),
        confidence,
        mann_whitney_p: enough.then(|| mann_whitney_p(&b, &n)),
    })
}

/// Percentile bootstrap of median(new) − median(base): each side resampled
/// with replacement `resamples` times.
fn bootstrap(b: &[f64], n: &[f64], confidence: f64, resamples: usize) -> Interval {
    let mut rng = SplitMix(seed_of(b, n));
    let mut diffs = Vec::with_capacity(resamples);
    let (mut rb, mut rn) = (vec![0.0; b.len()], vec![0.0; n.len()]);
    for _ in 0..resamples {
        let mb = resampled_median(b, &mut rb, &mut rng);
        let mn = resampled_median(n, &mut rn, &mut rng);
        diffs.push(mn - mb);
    }
    diffs.sort_by(f64::total_cmp);
    let alpha = (1.0 - confidence.clamp(0.0, 1.0)) / 2.0;
    Interval {
        lo: quantile_sorted(&diffs, alpha),
        hi: quantile_sorted(&diffs, 1.0 - alpha),
    }
}

fn resampled_median(from: &[f64], buf: &mut [f64], rng: &mut SplitMix) -> f64 {
    for slot in buf.iter_mut() {
        *slot = from[rng.below(from.len())];
    }
    buf.sort_by(f64::total_cmp);
    quantile_sorted(buf, 0.5)
}

/// FNV-1a over both sorted samples: the same data, the same interval.
fn seed_of(b: &[f64], n: &[f64]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |x: u64| {
        for byte in x.to_le_bytes() {
            h ^= u64::from(byte);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    eat(b.len() as u64);
    b.iter().for_each(|v| eat(v.to_bits()));
    eat(n.len() as u64);
    n.iter().for_each(|v| eat(v.to_bits()));
    h
}

/// SplitMix64: small, fast and the same on every platform and version.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0), by the multiply-shift reduction.
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next()) * n as u128) >> 64) as usize
    }
}

/// Two-sided Mann–Whitney U p-value, normal approximation with ties
/// corrected and a continuity correction.
fn mann_whitney_p(b: &[f64], n: &[f64]) -> f64 {
    let (n1, n2) = (b.len() as f64, n.len() as f64);
    let mut all: Vec<(f64, bool)> = b
        .iter()
        .map(|&v| (v, false))
        .chain(n.iter().map(|&v| (v, true)))
        .collect();
    all.sort_by(|x, y| x.0.total_cmp(&y.0));
    let total = all.len();
    let (mut rank_new, mut ties) = (0.0, 0.0);
    let mut i = 0;
    while i < total {
        let mut j = i;
        while j + 1 < total && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        // Ranks i+1 ..= j+1 share their average.
        let avg = (i + j + 2) as f64 / 2.0;
        let t = (j - i + 1) as f64;
        ties += t * t * t - t;
        rank_new += avg * all[i..=j].iter().filter(|x| x.1).count() as f64;
        i = j + 1;
    }
    let u = rank_new - n2 * (n2 + 1.0) / 2.0;
    let mean = n1 * n2 / 2.0;
    let nn = n1 + n2;
    let var = n1 * n2 / 12.0 * ((nn + 1.0) - ties / (nn * (nn - 1.0)));
    if var <= 0.0 {
        return 1.0;
    }
    let z = ((u - mean).abs() - 0.5).max(0.0) / var.sqrt();
    (2.0 * (1.0 - normal_cdf(z))).clamp(0.0, 1.0)
}

/// Φ(x), from the complementary error function (Numerical Recipes'
/// Chebyshev fit, |error| < 1.2e-7).
pub fn normal_cdf(x: f64) -> f64 {
    1.0 - 0.5 * erfc(x / std::f64::consts::SQRT_2)
}

fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// The two-sided normal quantile z with P(|Z| ≤ z) = `confidence`, by
/// bisection on [`normal_cdf`].
pub fn z_of(confidence: f64) -> f64 {
    let target = 0.5 + confidence.clamp(0.0, 0.999_999) / 2.0;
    let (mut lo, mut hi) = (0.0_f64, 10.0_f64);
    for _ in 0..80 {
        let mid = (lo + hi) / 2.0;
        if normal_cdf(mid) < target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (lo + hi) / 2.0
}

/// The half-width at which an interval around a difference `d` (its size,
/// towards worse or better) settles a verdict against threshold `t`: past
/// the threshold, |d| (the interval then excludes 0); within it, t − |d|
/// (the interval then fits within ±t), but at least t/2 so a difference
/// near the threshold does not ask for endless runs.
pub fn decisive_half_width(d: f64, t: f64) -> f64 {
    let d = d.abs();
    if d > t {
        d
    } else {
        (t - d).max(t / 2.0)
    }
}

/// Runs per side that would make the interval's half-width smaller than
/// `threshold` (a target half-width, see [`decisive_half_width`]), from the
/// observed spread:
///
/// σ ≈ pooled IQR / 1.349 (the IQR of a normal is 1.349 σ); the standard
/// error of a median of k values is ≈ 1.2533 σ / √k, so the difference of
/// two medians has half-width h ≈ z · 1.2533 σ · √(2/k). Solving h < T:
///
/// k = ⌈ π · (z σ / T)² ⌉  (2 · 1.2533² = π), at least [`MIN_RUNS`].
///
/// `None` when the threshold is not positive or nothing varied.
pub fn runs_needed(
    base: &Summary,
    new: &Summary,
    threshold: f64,
    confidence: f64,
) -> Option<usize> {
    if threshold.is_nan() || threshold <= 0.0 {
        return None;
    }
    let iqr = (base.iqr() + new.iqr()) / 2.0;
    // Two or three values have a degenerate IQR: fall back on the range.
    let range = (base.max - base.min).max(new.max - new.min) / 2.0;
    let sigma = if iqr > 0.0 { iqr } else { range } / 1.349;
    if !sigma.is_finite() {
        return None;
    }
    let k = std::f64::consts::PI * (z_of(confidence) * sigma / threshold).powi(2);
    Some((k.ceil() as usize).max(MIN_RUNS))
}

/// Runs per side that would shrink an observed interval of half-width
/// `half_width` (from `n` runs per side) below `threshold`: the half-width
/// falls as 1/√k, so k = ⌈n · (h / T)²⌉, and always more than `n`.
pub fn runs_needed_from_interval(n: usize, half_width: f64, threshold: f64) -> Option<usize> {
    if threshold.is_nan() || threshold <= 0.0 || !half_width.is_finite() {
        return None;
    }
    let k = n as f64 * (half_width / threshold).powi(2);
    Some((k.ceil() as usize).max(n + 1))
}

/// One-sided Fisher exact test: the probability that `k_new` or more of
/// the `k_new + k_base` runs with an event fall among the `n_new` new runs
/// when the event does not depend on the side (hypergeometric tail).
pub fn fisher_greater(k_new: usize, n_new: usize, k_base: usize, n_base: usize) -> f64 {
    let (k, n) = (k_new + k_base, n_new + n_base);
    let ln_choose = |a: usize, b: usize| -> f64 {
        if b > a {
            f64::NEG_INFINITY
        } else {
            ln_factorial(a) - ln_factorial(b) - ln_factorial(a - b)
        }
    };
    let total = ln_choose(n, n_new);
    let p: f64 = (k_new..=k.min(n_new))
        .map(|x| (ln_choose(k, x) + ln_choose(n - k, n_new - x) - total).exp())
        .filter(|v| v.is_finite())
        .sum();
    p.clamp(0.0, 1.0)
}

fn ln_factorial(n: usize) -> f64 {
    (2..=n).map(|i| (i as f64).ln()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random samples for the tests.
    fn sample(seed: u64, n: usize, f: impl Fn(f64) -> f64) -> Vec<f64> {
        let mut r = SplitMix(seed);
        (0..n)
            .map(|_| f((r.next() >> 11) as f64 / (1u64 << 53) as f64))
            .collect()
    }

    #[test]
    fn median_and_quartiles_of_known_samples() {
        let s = Summary::of(&[5.0, 1.0, 3.0, 2.0, 4.0]).unwrap();
        assert_eq!(
            (s.median, s.q1, s.q3, s.min, s.max),
            (3.0, 2.0, 4.0, 1.0, 5.0)
        );
        assert_eq!(median(&[1.0, 2.0, 3.0, 10.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[1.0, f64::NAN]), None);
    }

    #[test]
    fn equal_distributions_give_an_interval_around_zero() {
        let b = sample(1, 10, |u| 40.0 + 10.0 * u);
        let n = sample(2, 10, |u| 40.0 + 10.0 * u);
        let d = difference(&b, &n, 0.95).unwrap();
        let ci = d.ci.unwrap();
        assert!(ci.contains(0.0), "{ci:?}");
        assert!(d.mann_whitney_p.unwrap() > 0.05, "{d:?}");
    }

    #[test]
    fn a_clear_shift_excludes_zero() {
        let b = sample(3, 10, |u| 40.0 + 4.0 * u);
        let n = sample(4, 10, |u| 46.0 + 4.0 * u);
        let d = difference(&b, &n, 0.95).unwrap();
        let ci = d.ci.unwrap();
        assert!(ci.lo > 0.0 && ci.hi < 12.0, "{ci:?}");
        assert!((d.diff - 6.0).abs() < 2.0, "{d:?}");
        assert!(d.mann_whitney_p.unwrap() < 0.01, "{d:?}");
    }

    #[test]
    fn a_few_huge_outliers_barely_move_the_medians() {
        let mut b = sample(5, 10, |u| 40.0 + 10.0 * u);
        let mut n = sample(6, 10, |u| 40.0 + 10.0 * u);
        b[0] = 900.0;
        n[3] = 2000.0;
        n[7] = 5000.0;
        let d = difference(&b, &n, 0.95).unwrap();
        assert!(d.ci.unwrap().contains(0.0), "{d:?}");
        assert!(d.diff.abs() < 10.0, "{d:?}");
    }

    #[test]
    fn the_interval_is_reproducible_and_order_free() {
        let b = sample(7, 8, |u| u * 100.0);
        let n = sample(8, 8, |u| u * 100.0 + 5.0);
        let x = difference(&b, &n, 0.95).unwrap();
        let mut br = b.clone();
        br.reverse();
        let y = difference(&br, &n, 0.95).unwrap();
        assert_eq!(x, y);
    }

    #[test]
    fn too_few_runs_give_no_interval() {
        let d = difference(&[1.0, 2.0], &[3.0, 4.0, 5.0], 0.95).unwrap();
        assert_eq!(d.ci, None);
        assert_eq!(d.diff, 2.5);
        assert_eq!(d.relative, Some(1.0 / 0.6));
    }

    #[test]
    fn fisher_matches_hand_counts() {
        // 1 of 10 new against 0 of 10 base: half the ways put it on new.
        assert!((fisher_greater(1, 10, 0, 10) - 0.5).abs() < 1e-9);
        // 5 of 10 against 0 of 10: C(10,5)/C(20,5) = 252/15504.
        assert!((fisher_greater(5, 10, 0, 10) - 252.0 / 15504.0).abs() < 1e-9);
        assert!((fisher_greater(0, 10, 3, 10) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn z_and_the_normal_cdf_agree_with_tables() {
        assert!((z_of(0.95) - 1.959_964).abs() < 1e-4);
        assert!((z_of(0.99) - 2.575_829).abs() < 1e-4);
        assert!((normal_cdf(1.0) - 0.841_345).abs() < 1e-6);
    }

    #[test]
    fn runs_needed_follows_the_formula() {
        // IQR 1.349 on both sides: σ = 1; z(0.95)=1.96; T = 1:
        // π · 1.96² = 12.07 -> 13.
        let s = Summary {
            n: 5,
            median: 0.0,
            q1: 0.0,
            q3: 1.349,
            min: 0.0,
            max: 2.0,
        };
        assert_eq!(runs_needed(&s, &s, 1.0, 0.95), Some(13));
        assert_eq!(runs_needed(&s, &s, 100.0, 0.95), Some(MIN_RUNS));
        assert_eq!(runs_needed(&s, &s, 0.0, 0.95), None);
        // An interval of half-width 2 from 10 runs, threshold 1: 40.
        assert_eq!(runs_needed_from_interval(10, 2.0, 1.0), Some(40));
        assert_eq!(runs_needed_from_interval(10, 1.01, 1.0), Some(11));
        // Past the threshold the interval need only exclude 0; within it,
        // fit inside ±T; never a target under T/2.
        assert_eq!(decisive_half_width(-5.0, 2.0), 5.0);
        assert_eq!(decisive_half_width(0.5, 2.0), 1.5);
        assert_eq!(decisive_half_width(1.9, 2.0), 1.0);
    }

    /// The false-alarm rate of "the interval excludes 0" on equal
    /// distributions, heavy-tailed (lognormal-ish), 10 runs per side.
    #[test]
    fn equal_heavy_tailed_samples_rarely_exclude_zero() {
        let mut excluded = 0;
        let trials = 400;
        for t in 0..trials {
            let heavy = |u: f64| 30.0 * (-(1.0 - u).ln()).powf(1.5) + 20.0;
            let b = sample(1000 + t, 10, heavy);
            let n = sample(5000 + t, 10, heavy);
            let ci = difference(&b, &n, 0.95).unwrap().ci.unwrap();
            if !ci.contains(0.0) {
                excluded += 1;
            }
        }
        // Nominal 5 %; the percentile bootstrap of medians at n = 10 runs
        // a little over it.
        assert!(excluded <= trials / 10, "{excluded} of {trials}");
    }
}
