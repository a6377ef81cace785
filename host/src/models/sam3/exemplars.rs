//! Exemplar prompts: box prompts as the decoder's exemplar boxes, how exemplars are spread over
//! a decoder's fixed number of box slots, and why point prompts are not exemplars.

/// An exemplar box in original pixel coordinates `[x0, y0, x1, y1]`: positive ("more like
/// this", label 1) or negative ("not this", label 0).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Exemplar {
    /// `[x0, y0, x1, y1]` in original pixels.
    pub bbox: [f64; 4],
    /// Label 1 (true) or 0 (false).
    pub positive: bool,
}

/// Why a point prompt cannot be served by the export configured under `config_key`: the seed
/// (`predict_inst`) returns the object under the point from SAM3's interactive instance head,
/// which samexporter's grounding decoder does not have. Treating points as exemplars instead
/// would return every similar object: a different answer.
pub fn points_unsupported(config_key: &str) -> String {
    format!(
        "SAM3 point prompts need SAM3's interactive instance head (the seed's predict_inst: the object under the point), which the export configured as {config_key} lacks: its decoder (samexporter's grounding decoder) takes exemplar boxes only. Send boxes (every object like the box) or a text prompt to /segment/text."
    )
}

/// Positive exemplars for boxes `[x0, y0, x1, y1]` in original pixels: corners are ordered and
/// clipped to the image; boxes with nothing inside the image are dropped.
pub fn box_exemplars(boxes: &[[f64; 4]], width: u32, height: u32) -> Vec<Exemplar> {
    let (w, h) = (width as f64, height as f64);
    boxes
        .iter()
        .filter_map(|b| {
            let x0 = b[0].min(b[2]).clamp(0.0, w);
            let x1 = b[0].max(b[2]).clamp(0.0, w);
            let y0 = b[1].min(b[3]).clamp(0.0, h);
            let y1 = b[1].max(b[3]).clamp(0.0, h);
            (b.iter().all(|v| v.is_finite()) && x1 > x0 && y1 > y0).then_some(Exemplar {
                bbox: [x0, y0, x1, y1],
                positive: true,
            })
        })
        .collect()
}

/// Splits exemplars into decoder runs of at most `slots` boxes (`None`: one run with all).
/// No exemplar gives one empty run (a masked slot). Positives are spread over the runs; each
/// run's spare slots take negatives.
pub(super) fn slot_groups(exemplars: &[Exemplar], slots: Option<usize>) -> Vec<Vec<Exemplar>> {
    let Some(slots) = slots.filter(|&s| s < exemplars.len()) else {
        return vec![exemplars.to_vec()];
    };
    let slots = slots.max(1);
    let (positives, negatives): (Vec<Exemplar>, Vec<Exemplar>) =
        exemplars.iter().partition(|e| e.positive);
    if positives.is_empty() {
        return negatives.chunks(slots).map(<[Exemplar]>::to_vec).collect();
    }
    positives
        .chunks(slots)
        .map(|chunk| {
            let mut group = chunk.to_vec();
            group.extend(negatives.iter().take(slots - chunk.len()).copied());
            group
        })
        .collect()
}
