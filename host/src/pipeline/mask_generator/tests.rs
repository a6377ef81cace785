//! Tests of [`generate`] with a fake model (a label map of rectangles; the decoder returns the
//! region under the point), and over the real demo ONNX models when they are present.

use std::sync::Arc;

use ndarray::{ArrayD, IxDyn};

use super::*;
use crate::masks::BBox;
use crate::models::{DecodedMasks, LowResFrame, ModelFamily, Upsampling};
use crate::raster::RgbImage;

/// A synthetic scene: a label map, 0 = background.
struct Scene {
    width: u32,
    height: u32,
    labels: Vec<u32>,
    rects: Vec<BBox>,
}

impl Scene {
    fn new(width: u32, height: u32, rects: &[(u32, u32, u32, u32)]) -> Scene {
        let mut labels = vec![0u32; (width * height) as usize];
        let rects: Vec<BBox> = rects
            .iter()
            .map(|&(x, y, w, h)| BBox {
                x,
                y,
                width: w,
                height: h,
            })
            .collect();
        for (i, r) in rects.iter().enumerate() {
            for y in r.y..r.y + r.height {
                for x in r.x..r.x + r.width {
                    labels[(y * width + x) as usize] = i as u32 + 1;
                }
            }
        }
        Scene {
            width,
            height,
            labels,
            rects,
        }
    }

    fn standard() -> Scene {
        Scene::new(
            128,
            128,
            &[
                (10, 12, 30, 26),
                (60, 20, 40, 30),
                (20, 70, 30, 40),
                (75, 75, 40, 35),
            ],
        )
    }

    fn rect_dense(&self, i: usize) -> Vec<bool> {
        self.labels.iter().map(|&l| l == i as u32 + 1).collect()
    }
}

/// The fake decoder: for a point on label `l`, candidates are (0) the crop's pixels of `l`
/// with sharp logits, score 0.95; (1) the same grown by 2 px, sharp, score 0.86; (2) the
/// same region with soft logits (±0.5, stability 0), score 0.97. With `island`, the masks of
/// label 1 also hold a 3×3 island at (2, 118).
struct FakeModel {
    scene: Scene,
    island: bool,
}

fn crop_embedding(crop: CropBox) -> Result<Arc<Embedding>, ModelError> {
    let origin = ArrayD::from_shape_vec(IxDyn(&[2]), vec![crop.x0 as f32, crop.y0 as f32])
        .map_err(|e| ModelError::Inference(e.to_string()))?;
    Ok(Arc::new(Embedding {
        tensors: vec![("origin".into(), origin)],
        width: crop.width(),
        height: crop.height(),
    }))
}

impl PromptableModel for FakeModel {
    fn family(&self) -> ModelFamily {
        ModelFamily::Sam2
    }

    fn input_side(&self) -> u32 {
        1024
    }

    fn encode(&self, _: &RgbImage, _: u32, _: u32) -> Result<Embedding, ModelError> {
        Err(ModelError::Inference(
            "the fake model does not encode".into(),
        ))
    }

    fn decode(
        &self,
        embedding: &Embedding,
        prompts: &[DecoderPrompt],
        multimask: bool,
    ) -> Result<Vec<DecodedMasks>, ModelError> {
        assert!(multimask);
        let origin = embedding.tensor("origin").expect("fake embedding");
        let (ox, oy) = (origin[[0]] as u32, origin[[1]] as u32);
        let (cw, ch) = (embedding.width, embedding.height);
        let s = &self.scene;
        let frame = LowResFrame {
            width: cw,
            height: ch,
            image_width: cw,
            image_height: ch,
            upsampling: Upsampling::Direct,
        };
        Ok(prompts
            .iter()
            .map(|p| {
                assert_eq!(p.labels, vec![1]);
                let px = (ox + p.points[0][0] as u32).min(s.width - 1);
                let py = (oy + p.points[0][1] as u32).min(s.height - 1);
                let label = s.labels[(py * s.width + px) as usize];
                let in_crop = |x: u32, y: u32| s.labels[((oy + y) * s.width + ox + x) as usize];
                let mut region: Vec<bool> = (0..ch)
                    .flat_map(|y| (0..cw).map(move |x| (x, y)))
                    .map(|(x, y)| in_crop(x, y) == label)
                    .collect();
                if self.island && label == 1 {
                    for y in 118..121u32 {
                        for x in 2..5u32 {
                            if x >= ox && y >= oy && x < ox + cw && y < oy + ch {
                                region[((y - oy) * cw + x - ox) as usize] = true;
                            }
                        }
                    }
                }
                let grown: Vec<bool> = (0..ch as i64)
                    .flat_map(|y| (0..cw as i64).map(move |x| (x, y)))
                    .map(|(x, y)| {
                        (y - 2..=y + 2).any(|ny| {
                            (x - 2..=x + 2).any(|nx| {
                                nx >= 0
                                    && ny >= 0
                                    && nx < cw as i64
                                    && ny < ch as i64
                                    && region[(ny * cw as i64 + nx) as usize]
                            })
                        })
                    })
                    .collect();
                let logits = |m: &[bool], v: f32| -> Vec<f32> {
                    m.iter().map(|&b| if b { v } else { -v }).collect()
                };
                DecodedMasks {
                    logits: vec![
                        logits(&region, 10.0),
                        logits(&grown, 10.0),
                        logits(&region, 0.5),
                    ],
                    scores: vec![0.95, 0.86, 0.97],
                    frame,
                }
            })
            .collect())
    }
}

fn run_fake(model: &FakeModel, params: &AutomaticParams) -> AutomaticOutput {
    generate(
        model,
        model.scene.width,
        model.scene.height,
        &crop_embedding,
        params,
    )
    .expect("generate")
}

fn fake(island: bool) -> FakeModel {
    FakeModel {
        scene: Scene::standard(),
        island,
    }
}

fn small_grid() -> AutomaticParams {
    AutomaticParams {
        points_per_side: 16,
        ..AutomaticParams::default()
    }
}

fn iou(a: &[bool], b: &[bool]) -> f64 {
    let inter = a.iter().zip(b).filter(|(x, y)| **x && **y).count() as f64;
    let union = a.iter().zip(b).filter(|(x, y)| **x || **y).count() as f64;
    if union == 0.0 {
        0.0
    } else {
        inter / union
    }
}

/// For each rectangle, the masks overlapping it with IoU ≥ `min_iou`.
fn matches_per_rect(scene: &Scene, masks: &[Mask], min_iou: f64) -> Vec<usize> {
    (0..scene.rects.len())
        .map(|i| {
            let rect = scene.rect_dense(i);
            masks
                .iter()
                .filter(|m| iou(&m.to_dense(scene.width, scene.height), &rect) >= min_iou)
                .count()
        })
        .collect()
}

#[test]
fn one_mask_per_object_plus_background() {
    let model = fake(false);
    let out = run_fake(&model, &small_grid());
    assert_eq!(out.candidates, 16 * 16 * 3);
    assert_eq!(
        matches_per_rect(&model.scene, &out.masks, 1.0),
        vec![1, 1, 1, 1]
    );
    // The background field is one more mask: the largest, so id 1.
    assert_eq!(
        out.masks.len(),
        5,
        "{:?}",
        out.masks.iter().map(|m| m.bbox).collect::<Vec<_>>()
    );
    let object_area: u64 = model
        .scene
        .rects
        .iter()
        .map(|r| (r.width * r.height) as u64)
        .sum();
    assert_eq!(out.masks[0].area, 128 * 128 - object_area);
    for (i, m) in out.masks.iter().enumerate() {
        assert_eq!(m.id, i as u32 + 1);
        assert_eq!(m.label, m.id);
        // The sharp exact candidate wins; the soft one (higher score) fails stability.
        assert_eq!(m.score, 0.95);
        assert!(m.stability >= 0.95);
        if i > 0 {
            assert!(out.masks[i - 1].area >= m.area);
        }
    }
}

#[test]
fn iou_threshold_above_one_keeps_nothing() {
    let params = AutomaticParams {
        pred_iou_thresh: 1.01,
        ..small_grid()
    };
    let out = run_fake(&fake(false), &params);
    assert!(out.masks.is_empty());
    assert_eq!(out.candidates, 16 * 16 * 3);
}

#[test]
fn stability_filter_drops_soft_candidates() {
    // Without the stability filter the soft candidate (score 0.97) wins every NMS.
    let params = AutomaticParams {
        stability_score_thresh: 0.0,
        ..small_grid()
    };
    let out = run_fake(&fake(false), &params);
    assert_eq!(out.masks.len(), 5);
    assert!(out
        .masks
        .iter()
        .all(|m| m.score == 0.97 && m.stability == 0.0));
    // With it, none is left.
    let out = run_fake(&fake(false), &small_grid());
    assert!(out.masks.iter().all(|m| m.stability >= 0.95));
}

#[test]
fn crop_layer_finds_each_object_once() {
    let params = AutomaticParams {
        crop_n_layers: 1,
        ..small_grid()
    };
    let model = fake(false);
    let out = run_fake(&model, &params);
    assert_eq!(out.candidates, 5 * 16 * 16 * 3);
    assert_eq!(
        matches_per_rect(&model.scene, &out.masks, 1.0),
        vec![1, 1, 1, 1]
    );
    assert_eq!(
        matches_per_rect(&model.scene, &out.masks, 0.3),
        vec![1, 1, 1, 1]
    );
    assert_eq!(out.masks.len(), 5);
}

#[test]
fn min_region_area_removes_small_island() {
    let model = fake(true);
    let out = run_fake(&model, &small_grid());
    let first = model.scene.rects[0];
    let with_island = out
        .masks
        .iter()
        .find(|m| m.bbox.x == 2)
        .expect("the first object's mask carries the island");
    assert_eq!(with_island.area, (first.width * first.height) as u64 + 9);

    let params = AutomaticParams {
        min_mask_region_area: 20,
        ..small_grid()
    };
    let out = run_fake(&model, &params);
    assert_eq!(
        matches_per_rect(&model.scene, &out.masks, 1.0),
        vec![1, 1, 1, 1]
    );
    assert_eq!(out.masks.len(), 5);
    assert!(out.masks.iter().all(|m| m.bbox.x != 2));
}

#[test]
fn thread_count_does_not_change_the_result() {
    let model = fake(true);
    let base = AutomaticParams {
        crop_n_layers: 1,
        min_mask_region_area: 20,
        points_per_batch: 7,
        ..small_grid()
    };
    let one = run_fake(
        &model,
        &AutomaticParams {
            threads: 1,
            ..base.clone()
        },
    );
    let two = run_fake(
        &model,
        &AutomaticParams {
            threads: 2,
            ..base.clone()
        },
    );
    let five = run_fake(&model, &AutomaticParams { threads: 5, ..base });
    assert!(!one.masks.is_empty());
    assert_eq!(one.masks, two.masks);
    assert_eq!(one.masks, five.masks);
    assert_eq!(one.candidates, two.candidates);
}

#[test]
fn invalid_parameters_are_an_error() {
    let params = AutomaticParams {
        points_per_side: 0,
        ..AutomaticParams::default()
    };
    let e = generate(&fake(false), 128, 128, &crop_embedding, &params).unwrap_err();
    assert!(e.to_string().contains("points_per_side"), "{e}");
}

#[test]
fn wrong_embedding_size_is_an_error() {
    let bad = |crop: CropBox| -> Result<Arc<Embedding>, ModelError> {
        crop_embedding(CropBox {
            x1: crop.x1 / 2,
            ..crop
        })
    };
    let e = generate(&fake(false), 128, 128, &bad, &small_grid()).unwrap_err();
    assert!(e.to_string().contains("embedding"), "{e}");
}

// ---- Real demo models (ONNX Runtime), skipped with a notice when absent ----

fn runtime() -> Option<&'static crate::models::OnnxRuntime> {
    crate::test_skip::test_runtime("automatic demo model tests")
}

/// The demo model of `family`, or `None` (with a printed notice) when ONNX Runtime or the
/// generated models are missing.
fn demo_model(family: ModelFamily) -> Option<Arc<dyn PromptableModel>> {
    let prefix = match family {
        ModelFamily::Sam => "sam",
        ModelFamily::Sam2 => "sam2",
    };
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/demo");
    let encoder = dir.join(format!("{prefix}_encoder.onnx"));
    let decoder = dir.join(format!("{prefix}_decoder.onnx"));
    if !encoder.is_file() || !decoder.is_file() {
        crate::test_skip::skip(
            "automatic demo model tests",
            &format!(
                "demo models missing in {} (scripts/setup generates them)",
                dir.display()
            ),
        );
        return None;
    }
    let rt = runtime()?;
    let files = crate::config::ModelFiles {
        encoder: Some(encoder),
        decoder: Some(decoder),
        demo: true,
        ..Default::default()
    };
    match crate::models::load(rt, family, "test", &files) {
        Ok(m) => Some(m),
        Err(e) => {
            eprintln!("SKIPPED: cannot load the demo {prefix} model: {e}");
            None
        }
    }
}

const FIELD: [u8; 3] = [40, 160, 40];

/// A green field with coloured squares `(x, y, side, colour)`.
fn squares_image(side: u32, squares: &[(u32, u32, u32, [u8; 3])]) -> RgbImage {
    let mut pixels = Vec::with_capacity((side * side * 3) as usize);
    for y in 0..side {
        for x in 0..side {
            let colour = squares
                .iter()
                .find(|&&(sx, sy, s, _)| x >= sx && x < sx + s && y >= sy && y < sy + s)
                .map_or(FIELD, |&(_, _, _, c)| c);
            pixels.extend(colour);
        }
    }
    RgbImage {
        width: side,
        height: side,
        pixels,
    }
}

fn crop_image(image: &RgbImage, crop: CropBox) -> RgbImage {
    let mut pixels = Vec::with_capacity(crop.area() as usize * 3);
    for y in crop.y0..crop.y1 {
        let start = ((y * image.width + crop.x0) * 3) as usize;
        pixels.extend_from_slice(&image.pixels[start..start + crop.width() as usize * 3]);
    }
    RgbImage {
        width: crop.width(),
        height: crop.height(),
        pixels,
    }
}

fn run_real(
    model: &dyn PromptableModel,
    image: &RgbImage,
    params: &AutomaticParams,
) -> AutomaticOutput {
    let embed = |crop: CropBox| -> Result<Arc<Embedding>, ModelError> {
        let view = crop_image(image, crop);
        Ok(Arc::new(model.encode(
            &view,
            crop.width(),
            crop.height(),
        )?))
    };
    generate(model, image.width, image.height, &embed, params).expect("generate")
}

const SQUARES: [(u32, u32, u32, [u8; 3]); 3] = [
    (60, 60, 100, [220, 30, 30]),
    (300, 80, 120, [30, 60, 200]),
    (150, 330, 110, [230, 210, 40]),
];

#[test]
fn demo_sam2_finds_each_square_and_the_field() {
    let Some(model) = demo_model(ModelFamily::Sam2) else {
        return;
    };
    let params = AutomaticParams {
        points_per_side: 16,
        threads: 2,
        ..AutomaticParams::default()
    };
    check_squares_and_field(model.as_ref(), &params);
}

#[test]
fn demo_sam2_with_crop_layer_finds_each_square_once() {
    let Some(model) = demo_model(ModelFamily::Sam2) else {
        return;
    };
    let params = AutomaticParams {
        points_per_side: 8,
        crop_n_layers: 1,
        threads: 2,
        ..AutomaticParams::default()
    };
    check_squares_and_field(model.as_ref(), &params);
}

/// Runs `params` on the 512×512 field with three squares: one mask per square and one for
/// the field (IoU ≥ 0.85 each), nothing else.
fn check_squares_and_field(model: &dyn PromptableModel, params: &AutomaticParams) {
    let image = squares_image(512, &SQUARES);
    let out = run_real(model, &image, params);
    eprintln!(
        "demo SAM2 512×512, {} points/side, {} crop layers: {} masks of {} candidates, {:?}",
        params.points_per_side,
        params.crop_n_layers,
        out.masks.len(),
        out.candidates,
        out.timings
    );
    let region = |inside: &dyn Fn(u32, u32) -> bool| -> Vec<bool> {
        (0..512u32)
            .flat_map(|y| (0..512u32).map(move |x| (x, y)))
            .map(|(x, y)| inside(x, y))
            .collect()
    };
    let in_square = |x: u32, y: u32, &(sx, sy, s, _): &(u32, u32, u32, [u8; 3])| {
        x >= sx && x < sx + s && y >= sy && y < sy + s
    };
    let dense: Vec<Vec<bool>> = out.masks.iter().map(|m| m.to_dense(512, 512)).collect();
    for sq in &SQUARES {
        let truth = region(&|x, y| in_square(x, y, sq));
        let hits = dense.iter().filter(|d| iou(d, &truth) >= 0.85).count();
        assert_eq!(hits, 1, "square {sq:?}");
    }
    let field = region(&|x, y| !SQUARES.iter().any(|sq| in_square(x, y, sq)));
    let hits = dense.iter().filter(|d| iou(d, &field) >= 0.85).count();
    assert_eq!(hits, 1, "field");
    assert_eq!(out.masks.len(), 4);
}

#[test]
fn demo_sam_finds_each_square() {
    let Some(model) = demo_model(ModelFamily::Sam) else {
        return;
    };
    let image = squares_image(512, &SQUARES);
    let params = AutomaticParams {
        points_per_side: 16,
        ..AutomaticParams::default()
    };
    let out = run_real(model.as_ref(), &image, &params);
    eprintln!(
        "demo SAM 512×512, 16 points/side: {} masks of {} candidates, {:?}",
        out.masks.len(),
        out.candidates,
        out.timings
    );
    for sq in &SQUARES {
        let &(sx, sy, s, _) = sq;
        let truth: Vec<bool> = (0..512u32)
            .flat_map(|y| (0..512u32).map(move |x| (x, y)))
            .map(|(x, y)| x >= sx && x < sx + s && y >= sy && y < sy + s)
            .collect();
        let hits = out
            .masks
            .iter()
            .filter(|m| iou(&m.to_dense(512, 512), &truth) >= 0.85)
            .count();
        assert_eq!(hits, 1, "square {sq:?}");
    }
}

/// Timing on a 1024×1024 image with 32 points per side (run with `--ignored --nocapture`,
/// in release). Reports, asserts nothing about time.
#[test]
#[ignore]
fn bench_automatic_demo_models_1024() {
    let image = squares_image(
        1024,
        &[
            (80, 80, 160, [220, 30, 30]),
            (500, 100, 200, [30, 60, 200]),
            (200, 600, 180, [230, 210, 40]),
            (700, 650, 150, [245, 245, 245]),
            (820, 300, 90, [15, 15, 15]),
        ],
    );
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    for family in [ModelFamily::Sam2, ModelFamily::Sam] {
        let Some(model) = demo_model(family) else {
            return;
        };
        for t in [1, threads] {
            let params = AutomaticParams {
                threads: t,
                ..AutomaticParams::default()
            };
            let start = Instant::now();
            let out = run_real(model.as_ref(), &image, &params);
            eprintln!(
                "BENCH {family:?} 1024×1024, 32 points/side, threads {t}: total {:?} = encode {:?} + decode {:?} + postprocess {:?}; {} masks of {} candidates",
                start.elapsed(),
                out.timings.encode,
                out.timings.decode,
                out.timings.postprocess,
                out.masks.len(),
                out.candidates
            );
        }
    }
}
