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
