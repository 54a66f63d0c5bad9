//! Order statistics over measured durations.

use std::time::Duration;

/// The measured durations of one experiment, sorted ascending. Never empty.
#[derive(Debug, Clone)]
pub struct Samples {
    sorted: Vec<Duration>,
}

impl Samples {
    /// Sorts `values`, or returns `None` when there are none.
    pub fn new(mut values: Vec<Duration>) -> Option<Samples> {
        if values.is_empty() {
            return None;
        }
        values.sort_unstable();
        Some(Samples { sorted: values })
    }

    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    pub fn min(&self) -> Duration {
        self.sorted[0]
    }

    pub fn max(&self) -> Duration {
        self.sorted[self.sorted.len() - 1]
    }

    /// Returns the nearest-rank percentile: the smallest sample that at least `percent` percent
    /// of the samples are less than or equal to. `percent` is clamped to 1..=100.
    pub fn percentile(&self, percent: usize) -> Duration {
        let percent = percent.clamp(1, 100);
        let rank = (percent * self.sorted.len()).div_ceil(100);
        self.sorted[rank.max(1) - 1]
    }

    /// Returns the 50th percentile, which for an even count is the lower of the two middle
    /// samples.
    pub fn median(&self) -> Duration {
        self.percentile(50)
    }
}

/// Returns `numerator / denominator`, or infinity when the denominator is zero.
pub fn ratio(numerator: Duration, denominator: Duration) -> f64 {
    if denominator.is_zero() {
        return f64::INFINITY;
    }
    numerator.as_secs_f64() / denominator.as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn millis(values: &[u64]) -> Samples {
        let durations = values.iter().copied().map(Duration::from_millis).collect();
        Samples::new(durations).expect("test samples are not empty")
    }

    #[test]
    fn empty_samples_are_none() {
        assert!(Samples::new(Vec::new()).is_none());
    }

    #[test]
    fn min_max_after_sorting() {
        let samples = millis(&[30, 10, 20]);
        assert_eq!(samples.min(), Duration::from_millis(10));
        assert_eq!(samples.max(), Duration::from_millis(30));
        assert_eq!(samples.len(), 3);
    }

    #[test]
    fn median_of_odd_count() {
        let samples = millis(&[5, 1, 4, 2, 3]);
        assert_eq!(samples.median(), Duration::from_millis(3));
    }

    #[test]
    fn median_of_even_count_is_lower_middle() {
        let samples = millis(&[4, 1, 3, 2]);
        assert_eq!(samples.median(), Duration::from_millis(2));
    }

    #[test]
    fn nearest_rank_percentiles() {
        let samples = millis(&(1..=1000).collect::<Vec<_>>());
        assert_eq!(samples.percentile(50), Duration::from_millis(500));
        assert_eq!(samples.percentile(90), Duration::from_millis(900));
        assert_eq!(samples.percentile(99), Duration::from_millis(990));
        assert_eq!(samples.percentile(100), Duration::from_millis(1000));
    }

    #[test]
    fn percentile_rounds_rank_up() {
        let samples = millis(&[10, 20, 30]);
        assert_eq!(samples.percentile(34), Duration::from_millis(20));
        assert_eq!(samples.percentile(99), Duration::from_millis(30));
    }

    #[test]
    fn percentile_out_of_range_is_clamped() {
        let samples = millis(&[10, 20, 30]);
        assert_eq!(samples.percentile(0), Duration::from_millis(10));
        assert_eq!(samples.percentile(250), Duration::from_millis(30));
    }

    #[test]
    fn single_sample_is_every_percentile() {
        let samples = millis(&[7]);
        assert_eq!(samples.percentile(1), Duration::from_millis(7));
        assert_eq!(samples.median(), Duration::from_millis(7));
        assert_eq!(samples.percentile(99), Duration::from_millis(7));
    }

    #[test]
    fn ratio_of_durations() {
        let ratio = ratio(Duration::from_millis(30), Duration::from_millis(20));
        assert!((ratio - 1.5).abs() < 1e-9, "{ratio}");
    }

    #[test]
    fn ratio_with_zero_denominator_is_infinite() {
        assert!(ratio(Duration::from_millis(1), Duration::ZERO).is_infinite());
    }
}
