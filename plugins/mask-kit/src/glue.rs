//! Macros that connect a [`crate::Formatter`] or [`crate::Filter`] to the bindings that
//! `wit_bindgen::generate!` produced in the calling module.
//!
//! Use them in a module compiled for wasm only, right after `generate!`:
//!
//! ```ignore
//! #[cfg(target_arch = "wasm32")]
//! mod component {
//!     wit_bindgen::generate!({ world: "formatter-plugin", path: "../../../wit" });
//!     mask_kit::export_formatter!(super::MyFormatter);
//! }
//! ```
//!
//! The macros refer to the generated modules (`samgeo::plugin::...`, `exports::...`, and
//! the `export!` macro) by relative path, so they must be invoked in the module holding them.

/// Conversions and the host adapter shared by both export macros (not for direct use).
#[doc(hidden)]
#[macro_export]
macro_rules! __samgeo_glue_common {
    () => {
        use self::samgeo::plugin::host as __wit_host;
        use self::samgeo::plugin::types as __wit;

        /// The host's imports as a [`mask_kit::Host`].
        struct __WitHost;

        impl $crate::model::Host for __WitHost {
            fn log(&self, level: $crate::model::LogLevel, message: &str) {
                let level = match level {
                    $crate::model::LogLevel::Debug => __wit_host::LogLevel::Debug,
                    $crate::model::LogLevel::Info => __wit_host::LogLevel::Info,
                    $crate::model::LogLevel::Warn => __wit_host::LogLevel::Warn,
                    $crate::model::LogLevel::Error => __wit_host::LogLevel::Error,
                };
                __wit_host::log(level, message);
            }

            fn transform_points(
                &self,
                source_crs: &str,
                target_crs: &str,
                points: &[(f64, f64)],
            ) -> Result<Vec<(f64, f64)>, String> {
                __wit_host::transform_points(source_crs, target_crs, points)
            }
        }

        fn __mask_in(m: __wit::Mask) -> $crate::model::Mask {
            $crate::model::Mask {
                id: m.id,
                label: m.label,
                score: m.score,
                stability: m.stability,
                area: m.area,
                bbox: $crate::model::BBox {
                    x: m.bbox.x,
                    y: m.bbox.y,
                    width: m.bbox.width,
                    height: m.bbox.height,
                },
                runs: m.runs,
            }
        }

        #[allow(dead_code)]
        fn __mask_out(m: $crate::model::Mask) -> __wit::Mask {
            __wit::Mask {
                id: m.id,
                label: m.label,
                score: m.score,
                stability: m.stability,
                area: m.area,
                bbox: __wit::Bbox {
                    x: m.bbox.x,
                    y: m.bbox.y,
                    width: m.bbox.width,
                    height: m.bbox.height,
                },
                runs: m.runs,
            }
        }

        fn __request_in(r: __wit::Request) -> $crate::model::Request {
            $crate::model::Request {
                masks: $crate::model::MaskSet {
                    width: r.masks.width,
                    height: r.masks.height,
                    masks: r.masks.masks.into_iter().map(__mask_in).collect(),
                },
                georef: $crate::model::Georef {
                    geotransform: r
                        .georef
                        .geotransform
                        .map(|g| $crate::model::Geotransform([g.c0, g.c1, g.c2, g.c3, g.c4, g.c5])),
                    crs_wkt: r.georef.crs_wkt,
                    epsg: r.georef.epsg,
                },
                params: $crate::params::Params(r.params),
            }
        }

        fn __info_out(i: $crate::model::PluginInfo) -> __wit::PluginInfo {
            __wit::PluginInfo {
                name: i.name,
                description: i.description,
            }
        }
    };
}

/// Exports `$plugin` (a type implementing [`crate::Formatter`]) as the component's
/// `formatter` interface.
#[macro_export]
macro_rules! export_formatter {
    ($plugin:ty) => {
        $crate::__samgeo_glue_common!();

        struct __Component;

        impl self::exports::samgeo::plugin::formatter::Guest for __Component {
            fn info() -> __wit::PluginInfo {
                __info_out(<$plugin as $crate::model::Formatter>::info())
            }

            fn format(req: __wit::Request) -> Result<__wit::Output, String> {
                let out =
                    <$plugin as $crate::model::Formatter>::format(__request_in(req), &__WitHost)?;
                Ok(__wit::Output {
                    content_type: out.content_type,
                    file_name: out.file_name,
                    bytes: out.bytes,
                })
            }
        }

        export!(__Component);
    };
}

/// Exports `$plugin` (a type implementing [`crate::Filter`]) as the component's `filter`
/// interface.
#[macro_export]
macro_rules! export_filter {
    ($plugin:ty) => {
        $crate::__samgeo_glue_common!();

        struct __Component;

        impl self::exports::samgeo::plugin::filter::Guest for __Component {
            fn info() -> __wit::PluginInfo {
                __info_out(<$plugin as $crate::model::Filter>::info())
            }

            fn apply(req: __wit::Request) -> Result<Vec<__wit::Mask>, String> {
                let masks =
                    <$plugin as $crate::model::Filter>::apply(__request_in(req), &__WitHost)?;
                Ok(masks.into_iter().map(__mask_out).collect())
            }
        }

        export!(__Component);
    };
}
