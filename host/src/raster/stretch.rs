//! Turning any numeric band into 8 bits: a 2–98 percentile stretch that ignores invalid pixels.

/// Stretches `values` (one band) into 0..=255 between its 2nd and 98th percentile over the
/// pixels where `valid` is true; invalid pixels become 0. Falls back to min–max when the
/// percentiles coincide; a band whose valid values are all equal becomes mid-grey (128).
pub fn percentile_stretch(values: &[f32], valid: &[bool]) -> Vec<u8> {
    debug_assert_eq!(values.len(), valid.len());
    let mut sample: Vec<f32> = values
        .iter()
        .zip(valid)
        .filter(|(v, ok)| **ok && v.is_finite())
        .map(|(v, _)| *v)
        .collect();
    if sample.is_empty() {
        return vec![0; values.len()];
    }
    let (mut lo, mut hi) = (percentile(&mut sample, 0.02), percentile(&mut sample, 0.98));
    if hi <= lo {
        lo = sample.iter().copied().fold(f32::INFINITY, f32::min);
        hi = sample.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    }
    let span = hi - lo;
    values
        .iter()
        .zip(valid)
        .map(|(&v, &ok)| {
            if !ok || !v.is_finite() {
                0
            } else if span <= 0.0 {
                128
            } else {
                (((v - lo) / span) * 255.0).round().clamp(0.0, 255.0) as u8
            }
        })
        .collect()
}

/// The `q` quantile (0..1) by selection; reorders `sample`.
fn percentile(sample: &mut [f32], q: f64) -> f32 {
    let index = ((sample.len() - 1) as f64 * q).round() as usize;
    let (_, v, _) = sample.select_nth_unstable_by(index, |a, b| a.total_cmp(b));
    *v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uses_full_range_and_ignores_outliers() {
        let mut values: Vec<f32> = (0..1000).map(|i| i as f32).collect();
        values[0] = -1e9;
        values[999] = 1e9;
        let valid = vec![true; values.len()];
        let out = percentile_stretch(&values, &valid);
        assert_eq!(out[10], 0);
        assert_eq!(out[990], 255);
        assert!(out[500] > 100 && out[500] < 155, "{}", out[500]);
    }

    #[test]
    fn nan_and_invalid_become_zero() {
        let values = [f32::NAN, 1.0, 2.0, 3.0, 1000.0];
        let valid = [true, true, true, true, false];
        let out = percentile_stretch(&values, &valid);
        assert_eq!(out[0], 0);
        assert_eq!(out[4], 0);
        assert_eq!(out[3], 255);
    }

    #[test]
    fn flat_input_is_grey_and_empty_input_is_black() {
        assert_eq!(percentile_stretch(&[5.0; 4], &[true; 4]), vec![128; 4]);
        assert_eq!(percentile_stretch(&[5.0; 4], &[false; 4]), vec![0; 4]);
    }
}
