//! The `bands` form field: which raster bands become the model's R, G and B.

use super::RasterError;

/// Three 1-based band indexes, or the default choice made once the band count is known.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct BandSelection {
    requested: Option<Vec<usize>>,
}

impl BandSelection {
    /// Parses "4,3,2" (1-based, one to three bands). Empty or absent means the default.
    pub fn parse(field: Option<&str>) -> Result<BandSelection, RasterError> {
        let Some(text) = field.map(str::trim).filter(|t| !t.is_empty()) else {
            return Ok(BandSelection::default());
        };
        let mut bands = Vec::new();
        for part in text.split(',') {
            let part = part.trim();
            let index: usize = part.parse().map_err(|_| {
                RasterError::Invalid(format!(
                    "Invalid bands '{text}': '{part}' is not a band number (expected e.g. \"4,3,2\")"
                ))
            })?;
            if index == 0 {
                return Err(RasterError::Invalid(format!(
                    "Invalid bands '{text}': band numbers start at 1"
                )));
            }
            bands.push(index);
        }
        if bands.len() > 3 {
            return Err(RasterError::Invalid(format!(
                "Invalid bands '{text}': give one to three bands"
            )));
        }
        Ok(BandSelection {
            requested: Some(bands),
        })
    }

    /// The three bands to read for an image with `band_count` bands: the requested ones, or the
    /// first three; a single band is repeated, two bands become b1, b2, b1.
    pub fn resolve(&self, band_count: usize) -> Result<[usize; 3], RasterError> {
        self.resolve_with(band_count, None)
    }

    /// As [`resolve`](Self::resolve), but by default the bands labelled red, green and blue
    /// (`rgb`, when the file labels all three) are taken in that order, so a BGR-ordered file
    /// still shows its true colours.
    pub fn resolve_with(
        &self,
        band_count: usize,
        rgb: Option<[usize; 3]>,
    ) -> Result<[usize; 3], RasterError> {
        let chosen: Vec<usize> = match (&self.requested, rgb) {
            (Some(b), _) => b.clone(),
            (None, Some(rgb)) => rgb.to_vec(),
            (None, None) => (1..=band_count.min(3)).collect(),
        };
        if let Some(&bad) = chosen.iter().find(|&&b| b > band_count) {
            return Err(RasterError::Invalid(format!(
                "Invalid bands: band {bad} does not exist (the image has {band_count} band{})",
                if band_count == 1 { "" } else { "s" }
            )));
        }
        match chosen.as_slice() {
            [a] => Ok([*a, *a, *a]),
            [a, b] => Ok([*a, *b, *a]),
            [a, b, c] => Ok([*a, *b, *c]),
            _ => Err(RasterError::Invalid("The image has no bands".into())),
        }
    }

    /// A stable text form for cache keys.
    pub fn key(&self) -> String {
        match &self.requested {
            None => "default".into(),
            Some(b) => b
                .iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(","),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_band_count() {
        let d = BandSelection::default();
        assert_eq!(d.resolve(1).unwrap(), [1, 1, 1]);
        assert_eq!(d.resolve(2).unwrap(), [1, 2, 1]);
        assert_eq!(d.resolve(4).unwrap(), [1, 2, 3]);
    }

    #[test]
    fn explicit_bands() {
        let s = BandSelection::parse(Some("4, 3,2")).unwrap();
        assert_eq!(s.resolve(4).unwrap(), [4, 3, 2]);
        let e = s.resolve(3).unwrap_err();
        assert!(e.to_string().contains("band 4 does not exist"), "{e}");
    }

    #[test]
    fn bad_text_is_named() {
        for bad in ["a,b", "0", "1,2,3,4", "-1"] {
            let e = BandSelection::parse(Some(bad)).unwrap_err();
            assert!(e.to_string().contains("Invalid bands"), "{bad}: {e}");
        }
        assert_eq!(
            BandSelection::parse(Some(" ")).unwrap(),
            BandSelection::default()
        );
    }
}
