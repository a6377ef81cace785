//! Plain Rust mirrors of the WIT records (`samgeo:plugin/types`) and the traits a plugin
//! implements. Plugins work on these types so their logic runs and is tested natively; the
//! [`crate::glue`] macros convert to and from the generated bindings inside the component.

use crate::params::Params;

/// A GDAL affine geotransform: `x = c[0] + col*c[1] + row*c[2]`, `y = c[3] + col*c[4] + row*c[5]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Geotransform(pub [f64; 6]);

/// Where the raster lies on Earth; every field is `None` for an image without georeferencing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Georef {
    /// Pixel to map coordinates.
    pub geotransform: Option<Geotransform>,
    /// The CRS as OGC WKT.
    pub crs_wkt: Option<String>,
    /// The EPSG code of the CRS, where one matches.
    pub epsg: Option<u32>,
}

/// A pixel rectangle: columns `x .. x + width`, rows `y .. y + height` (exclusive ends).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BBox {
    /// First column.
    pub x: u32,
    /// First row.
    pub y: u32,
    /// Number of columns.
    pub width: u32,
    /// Number of rows.
    pub height: u32,
}

impl BBox {
    /// Exclusive end column (saturating, so a corrupt box cannot overflow).
    pub fn x_end(&self) -> u32 {
        self.x.saturating_add(self.width)
    }

    /// Exclusive end row (saturating).
    pub fn y_end(&self) -> u32 {
        self.y.saturating_add(self.height)
    }

    /// Number of pixels covered.
    pub fn pixels(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }

    /// True when the rectangle covers no pixel.
    pub fn is_empty(&self) -> bool {
        self.width == 0 || self.height == 0
    }

    /// The smallest rectangle holding both (an empty side is ignored).
    pub fn union(&self, other: &BBox) -> BBox {
        if self.is_empty() {
            return *other;
        }
        if other.is_empty() {
            return *self;
        }
        let x = self.x.min(other.x);
        let y = self.y.min(other.y);
        BBox {
            x,
            y,
            width: self.x_end().max(other.x_end()) - x,
            height: self.y_end().max(other.y_end()) - y,
        }
    }
}

/// One mask; see the WIT `mask` record. `runs` are row-major run lengths inside `bbox`,
/// alternating unset, set, unset, ... starting with unset (see [`crate::rle`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Mask {
    /// Stable identifier, unique within a mask set.
    pub id: u32,
    /// Value in label rasters and the `value` property of vector output.
    pub label: u32,
    /// Predicted IoU.
    pub score: f32,
    /// Stability score.
    pub stability: f32,
    /// Number of pixels set.
    pub area: u64,
    /// Tight bounding box of the set pixels.
    pub bbox: BBox,
    /// Run lengths inside `bbox`.
    pub runs: Vec<u32>,
}

impl Mask {
    /// Encodes a dense mask (`width * height` booleans, row-major; `true` = set) with
    /// `label = id`. Returns `None` for an empty mask.
    pub fn from_dense(
        id: u32,
        score: f32,
        stability: f32,
        width: u32,
        height: u32,
        pixels: &[bool],
    ) -> Option<Mask> {
        debug_assert_eq!(pixels.len(), width as usize * height as usize);
        let w = width as usize;
        let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0usize, 0usize);
        let mut area = 0u64;
        for (row_index, row) in pixels.chunks_exact(w.max(1)).enumerate() {
            let Some(first) = row.iter().position(|&p| p) else {
                continue;
            };
            let last = row.iter().rposition(|&p| p).unwrap_or(first);
            area += row[first..=last].iter().filter(|&&p| p).count() as u64;
            x0 = x0.min(first);
            x1 = x1.max(last + 1);
            y0 = y0.min(row_index);
            y1 = row_index + 1;
        }
        if area == 0 {
            return None;
        }
        let bbox = BBox {
            x: x0 as u32,
            y: y0 as u32,
            width: (x1 - x0) as u32,
            height: (y1 - y0) as u32,
        };
        let mut runs = Vec::new();
        let mut current = false;
        let mut run = 0u32;
        for row in y0..y1 {
            for &p in &pixels[row * w + x0..row * w + x1] {
                if p != current {
                    runs.push(run);
                    run = 0;
                    current = p;
                }
                run += 1;
            }
        }
        runs.push(run);
        Some(Mask {
            id,
            label: id,
            score,
            stability,
            area,
            bbox,
            runs,
        })
    }

    /// Calls `f(x, y)` for every set pixel, in image coordinates, row by row.
    pub fn for_each_pixel(&self, mut f: impl FnMut(u32, u32)) {
        let w = self.bbox.width.max(1);
        let mut offset = 0u32;
        for (i, &run) in self.runs.iter().enumerate() {
            if i % 2 == 1 {
                for k in offset..offset + run {
                    f(self.bbox.x + k % w, self.bbox.y + k / w);
                }
            }
            offset += run;
        }
    }

    /// Decodes into a dense `width * height` boolean raster (pixels outside it are dropped).
    pub fn to_dense(&self, width: u32, height: u32) -> Vec<bool> {
        let mut out = vec![false; width as usize * height as usize];
        self.for_each_pixel(|x, y| {
            if x < width && y < height {
                out[y as usize * width as usize + x as usize] = true;
            }
        });
        out
    }
}

/// The masks of one request over one image, in painting order (later wins).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MaskSet {
    /// Image width in pixels.
    pub width: u32,
    /// Image height in pixels.
    pub height: u32,
    /// The masks.
    pub masks: Vec<Mask>,
}

/// Everything a plugin is called with.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// The masks.
    pub masks: MaskSet,
    /// Georeferencing of the image.
    pub georef: Georef,
    /// Form fields and configured options.
    pub params: Params,
}

/// A formatter's result: the HTTP body and how to label it.
#[derive(Clone, Debug, PartialEq)]
pub struct Output {
    /// MIME type of `bytes`.
    pub content_type: String,
    /// Suggested file name (Content-Disposition).
    pub file_name: String,
    /// The body.
    pub bytes: Vec<u8>,
}

/// How the host checks a declared parameter (the WIT `param-type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamType {
    /// Any text.
    String,
    /// A whole number (`100.0` is accepted too).
    Integer,
    /// A finite decimal number.
    Number,
    /// `true`/`false`/`1`/`0`/`yes`/`no`, case-insensitive.
    Boolean,
}

/// A parameter a plugin reads from the request's params (the WIT `param-spec`). The host
/// checks values of declared parameters before the call (400 naming plugin and parameter),
/// lists them in `GET /plugins` and documents them in `/openapi.json`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamSpec {
    /// The key, e.g. `min_size`.
    pub name: String,
    /// The value's type.
    pub ty: ParamType,
    /// The value used when the parameter is absent (documentation).
    pub default: Option<String>,
    /// One line of documentation.
    pub description: String,
}

impl ParamSpec {
    /// A parameter of type `ty`.
    pub fn new(name: &str, ty: ParamType, default: Option<&str>, description: &str) -> Self {
        ParamSpec {
            name: name.to_owned(),
            ty,
            default: default.map(str::to_owned),
            description: description.to_owned(),
        }
    }
}

/// Name, version, one-line description and declared parameters of a plugin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginInfo {
    /// The name operators use (an `output_format` value for a formatter).
    pub name: String,
    /// The plugin's version; when left empty, the export macros fill in the plugin crate's
    /// `CARGO_PKG_VERSION`.
    pub version: String,
    /// One line for `GET /plugins`.
    pub description: String,
    /// The parameters the plugin reads.
    pub params: Vec<ParamSpec>,
}

impl PluginInfo {
    /// Build from string slices (no version yet, no parameters).
    pub fn new(name: &str, description: &str) -> Self {
        PluginInfo {
            name: name.to_owned(),
            version: String::new(),
            description: description.to_owned(),
            params: Vec::new(),
        }
    }

    /// Declares a parameter.
    pub fn param(
        mut self,
        name: &str,
        ty: ParamType,
        default: Option<&str>,
        description: &str,
    ) -> Self {
        self.params
            .push(ParamSpec::new(name, ty, default, description));
        self
    }

    /// Sets the version.
    pub fn version(mut self, version: &str) -> Self {
        self.version = version.to_owned();
        self
    }
}

/// Severity of a log line sent to the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    /// Debug detail.
    Debug,
    /// Normal information.
    Info,
    /// Something odd but handled.
    Warn,
    /// A failure.
    Error,
}

/// The services the host imports into a plugin (`samgeo:plugin/host`).
pub trait Host {
    /// Write a line to the server's log.
    fn log(&self, level: LogLevel, message: &str);

    /// Transform points between two CRSs (any string GDAL's SetFromUserInput accepts),
    /// traditional GIS axis order.
    fn transform_points(
        &self,
        source_crs: &str,
        target_crs: &str,
        points: &[(f64, f64)],
    ) -> Result<Vec<(f64, f64)>, String>;
}

/// A host for native tests and tools: logs to nowhere, cannot reproject.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoHost;

impl Host for NoHost {
    fn log(&self, _level: LogLevel, _message: &str) {}

    fn transform_points(
        &self,
        _source_crs: &str,
        _target_crs: &str,
        _points: &[(f64, f64)],
    ) -> Result<Vec<(f64, f64)>, String> {
        Err("no coordinate transformation available".to_owned())
    }
}

/// An output formatter (the `formatter` interface).
pub trait Formatter {
    /// Name and description.
    fn info() -> PluginInfo;
    /// Turn the masks into a response body; an error message reaches the client.
    fn format(req: Request, host: &dyn Host) -> Result<Output, String>;
}

/// A step of the mask filter chain (the `filter` interface).
pub trait Filter {
    /// Name and description.
    fn info() -> PluginInfo;
    /// The masks to keep, in painting order.
    fn apply(req: Request, host: &dyn Host) -> Result<Vec<Mask>, String>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_round_trips_an_l_shape() {
        let (w, h) = (5u32, 4u32);
        let mut dense = vec![false; 20];
        for &(x, y) in &[(1, 1), (1, 2), (2, 2), (3, 2)] {
            dense[y * 5 + x] = true;
        }
        let m = Mask::from_dense(7, 0.9, 1.0, w, h, &dense).unwrap();
        assert_eq!(
            m.bbox,
            BBox {
                x: 1,
                y: 1,
                width: 3,
                height: 2
            }
        );
        assert_eq!(m.area, 4);
        assert_eq!(m.runs, vec![0, 1, 2, 3]);
        assert_eq!(m.label, 7);
        assert_eq!(m.to_dense(w, h), dense);
        assert!(crate::rle::validate(&m, w, h).is_ok());
    }

    #[test]
    fn empty_dense_mask_is_none() {
        assert!(Mask::from_dense(1, 0.5, 1.0, 3, 3, &[false; 9]).is_none());
    }

    #[test]
    fn dense_runs_sum_to_bbox_area() {
        let dense: Vec<bool> = (0..64).map(|i| (i * 7) % 5 == 0).collect();
        let m = Mask::from_dense(1, 0.5, 1.0, 8, 8, &dense).unwrap();
        let total: u32 = m.runs.iter().sum();
        assert_eq!(total, m.bbox.width * m.bbox.height);
        assert_eq!(m.to_dense(8, 8), dense);
        assert_eq!(crate::rle::count_set(&m.runs), m.area);
    }

    #[test]
    fn bbox_union_ignores_empty_sides() {
        let a = BBox {
            x: 2,
            y: 3,
            width: 4,
            height: 1,
        };
        let b = BBox {
            x: 0,
            y: 5,
            width: 1,
            height: 2,
        };
        assert_eq!(a.union(&BBox::default()), a);
        assert_eq!(
            a.union(&b),
            BBox {
                x: 0,
                y: 3,
                width: 6,
                height: 4
            }
        );
        assert_eq!(a.pixels(), 4);
    }
}
