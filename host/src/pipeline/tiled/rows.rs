//! A mask as sorted runs of set pixels per row, in image coordinates: the form the tile merge
//! intersects and unites masks in without ever painting a raster.

use crate::masks::{BBox, Mask};

/// One run of set pixels: row `y`, columns `x0 .. x1` (exclusive end).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Span {
    pub y: u32,
    pub x0: u32,
    pub x1: u32,
}

/// The set pixels of one mask, as spans sorted by row then column, never overlapping or
/// touching within a row.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RowRuns {
    spans: Vec<Span>,
}

impl RowRuns {
    /// The spans of a bbox-local RLE mask.
    pub fn of_mask(mask: &Mask) -> RowRuns {
        let b = mask.bbox;
        let w = b.width.max(1) as u64;
        let mut spans = Vec::new();
        let mut offset = 0u64;
        for (i, &run) in mask.runs.iter().enumerate() {
            let (start, end) = (offset, offset + run as u64);
            offset = end;
            if i % 2 == 0 || run == 0 {
                continue;
            }
            // A run of set pixels may wrap over several rows of the bbox.
            let mut p = start;
            while p < end {
                let row = p / w;
                let row_end = ((row + 1) * w).min(end);
                spans.push(Span {
                    y: b.y + row as u32,
                    x0: b.x + (p - row * w) as u32,
                    x1: b.x + (row_end - row * w) as u32,
                });
                p = row_end;
            }
        }
        RowRuns::from_spans(spans)
    }

    /// Sorts `spans` and joins those that overlap or touch within a row.
    pub fn from_spans(mut spans: Vec<Span>) -> RowRuns {
        spans.retain(|s| s.x1 > s.x0);
        spans.sort_unstable();
        let mut out: Vec<Span> = Vec::with_capacity(spans.len());
        for s in spans {
            match out.last_mut() {
                Some(last) if last.y == s.y && s.x0 <= last.x1 => last.x1 = last.x1.max(s.x1),
                _ => out.push(s),
            }
        }
        RowRuns { spans: out }
    }

    /// The union of several masks' pixels.
    pub fn union<'a>(parts: impl IntoIterator<Item = &'a RowRuns>) -> RowRuns {
        RowRuns::from_spans(
            parts
                .into_iter()
                .flat_map(|r| r.spans.iter().copied())
                .collect(),
        )
    }

    /// Number of set pixels.
    pub fn area(&self) -> u64 {
        self.spans.iter().map(|s| (s.x1 - s.x0) as u64).sum()
    }

    /// Number of pixels set in both.
    pub fn intersection(&self, other: &RowRuns) -> u64 {
        let (a, b) = (&self.spans, &other.spans);
        let (mut i, mut j, mut count) = (0usize, 0usize, 0u64);
        while i < a.len() && j < b.len() {
            let (s, t) = (a[i], b[j]);
            if s.y != t.y {
                if s.y < t.y {
                    i += 1;
                } else {
                    j += 1;
                }
                continue;
            }
            count += s.x1.min(t.x1).saturating_sub(s.x0.max(t.x0)) as u64;
            if s.x1 <= t.x1 {
                i += 1;
            } else {
                j += 1;
            }
        }
        count
    }

    /// Number of set pixels inside the rectangle `x0..x1` × `y0..y1`.
    pub fn area_in(&self, (x0, y0, x1, y1): (u32, u32, u32, u32)) -> u64 {
        let first = self.spans.partition_point(|s| s.y < y0);
        self.spans[first..]
            .iter()
            .take_while(|s| s.y < y1)
            .map(|s| s.x1.min(x1).saturating_sub(s.x0.max(x0)) as u64)
            .sum()
    }

    /// Encodes the pixels as a bbox-local RLE mask; `None` when there are none.
    pub fn to_mask(&self, id: u32, score: f32, stability: f32) -> Option<Mask> {
        let first = self.spans.first()?;
        let last = self.spans.last()?;
        let x0 = self.spans.iter().map(|s| s.x0).min()?;
        let x1 = self.spans.iter().map(|s| s.x1).max()?;
        let bbox = BBox {
            x: x0,
            y: first.y,
            width: x1 - x0,
            height: last.y - first.y + 1,
        };
        let w = bbox.width as u64;
        let total = w * bbox.height as u64;
        let mut runs: Vec<u32> = Vec::new();
        let mut cursor = 0u64;
        for s in &self.spans {
            let start = (s.y - bbox.y) as u64 * w + (s.x0 - x0) as u64;
            let len = (s.x1 - s.x0) as u64;
            if let (true, Some(last)) = (start == cursor, runs.last_mut()) {
                // Continues the previous set run across a row boundary.
                *last += len as u32;
            } else {
                runs.push((start - cursor) as u32);
                runs.push(len as u32);
            }
            cursor = start + len;
        }
        if cursor < total {
            runs.push((total - cursor) as u32);
        }
        Some(Mask {
            id,
            label: id,
            score,
            stability,
            area: self.area(),
            bbox,
            runs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dense(w: u32, h: u32, set: &[(u32, u32)]) -> Vec<bool> {
        let mut d = vec![false; (w * h) as usize];
        for &(x, y) in set {
            d[(y * w + x) as usize] = true;
        }
        d
    }

    #[test]
    fn round_trips_through_spans() {
        // A run that wraps rows (right edge then left edge of the next row) and a hole.
        let d = dense(
            6,
            4,
            &[(1, 1), (2, 1), (3, 1), (1, 2), (3, 2), (3, 3), (1, 3)],
        );
        let m = Mask::from_dense(4, 0.5, 0.9, 6, 4, &d).unwrap();
        let r = RowRuns::of_mask(&m);
        assert_eq!(r.area(), 7);
        let back = r.to_mask(4, 0.5, 0.9).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.to_dense(6, 4), d);
        let full = Mask::from_dense(1, 1.0, 1.0, 3, 3, &[true; 9]).unwrap();
        assert_eq!(RowRuns::of_mask(&full).to_mask(1, 1.0, 1.0).unwrap(), full);
    }

    #[test]
    fn intersects_unites_and_counts_in_a_rectangle() {
        let a = RowRuns::from_spans(vec![
            Span {
                y: 0,
                x0: 0,
                x1: 10,
            },
            Span { y: 1, x0: 5, x1: 8 },
        ]);
        let b = RowRuns::from_spans(vec![
            Span {
                y: 0,
                x0: 8,
                x1: 20,
            },
            Span { y: 1, x0: 0, x1: 6 },
            Span { y: 2, x0: 0, x1: 6 },
        ]);
        assert_eq!(a.intersection(&b), 2 + 1);
        assert_eq!(b.intersection(&a), 3);
        let u = RowRuns::union([&a, &b]);
        assert_eq!(u.area(), 20 + 8 + 6);
        assert_eq!(u.area_in((5, 0, 9, 2)), 4 + 3);
        let m = u.to_mask(1, 1.0, 1.0).unwrap();
        assert_eq!(m.area, 34);
        assert_eq!(RowRuns::of_mask(&m), u);
    }
}
