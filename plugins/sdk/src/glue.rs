//! The macros that export a [`crate::Formatter`] or [`crate::Filter`] as a component: one line
//! at the root of the plugin crate, no `wit_bindgen` dependency and no copy of the WIT:
//!
//! ```ignore
//! samgeo_plugin_sdk::export_formatter!(MyFormatter);
//! ```
//!
//! They expand to nothing natively (so `cargo test` runs the plugin's logic as plain Rust) and,
//! for the wasm target, to an anonymous `const` block that implements the generated `Guest`
//! trait by converting between the bindings' types and the [`crate::model`] types.

/// Conversions and the host adapter shared by both export macros (not for direct use). `$b`
/// is the bindings module of the world being exported.
#[doc(hidden)]
#[macro_export]
macro_rules! __samgeo_glue_common {
    ($b:path) => {
        use __b::samgeo::plugin::host as __wit_host;
        use __b::samgeo::plugin::types as __wit;
        use $b as __b;

        /// The host's imports as a [`samgeo_plugin_sdk::Host`].
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
                version: if i.version.is_empty() {
                    env!("CARGO_PKG_VERSION").to_string()
                } else {
                    i.version
                },
                description: i.description,
                params: i
                    .params
                    .into_iter()
                    .map(|p| __wit::ParamSpec {
                        name: p.name,
                        type_: match p.ty {
                            $crate::model::ParamType::String => __wit::ParamType::String,
                            $crate::model::ParamType::Integer => __wit::ParamType::Integer,
                            $crate::model::ParamType::Number => __wit::ParamType::Number,
                            $crate::model::ParamType::Boolean => __wit::ParamType::Boolean,
                        },
                        default: p.default,
                        description: p.description,
                    })
                    .collect(),
            }
        }
    };
}

/// Exports `$plugin` (a type implementing [`crate::Formatter`]) as the component's
/// `formatter` interface (`samgeo:plugin/formatter@0.2.0`). Invoke once, at any module level.
#[macro_export]
macro_rules! export_formatter {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            $crate::__samgeo_glue_common!($crate::bindings::formatter);

            struct __Component;

            impl __b::exports::samgeo::plugin::formatter::Guest for __Component {
                fn info() -> __wit::PluginInfo {
                    __info_out(<$plugin as $crate::model::Formatter>::info())
                }

                fn format(req: __wit::Request) -> Result<__wit::Output, String> {
                    let out = <$plugin as $crate::model::Formatter>::format(
                        __request_in(req),
                        &__WitHost,
                    )?;
                    Ok(__wit::Output {
                        content_type: out.content_type,
                        file_name: out.file_name,
                        bytes: out.bytes,
                    })
                }
            }

            $crate::bindings::formatter::export_formatter_world!(__Component with_types_in $crate::bindings::formatter);
        };
    };
}

/// Exports `$plugin` (a type implementing [`crate::Filter`]) as the component's `filter`
/// interface (`samgeo:plugin/filter@0.2.0`). Invoke once, at any module level.
#[macro_export]
macro_rules! export_filter {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            $crate::__samgeo_glue_common!($crate::bindings::filter);

            struct __Component;

            impl __b::exports::samgeo::plugin::filter::Guest for __Component {
                fn info() -> __wit::PluginInfo {
                    __info_out(<$plugin as $crate::model::Filter>::info())
                }

                fn apply(req: __wit::Request) -> Result<Vec<__wit::Mask>, String> {
                    let masks = <$plugin as $crate::model::Filter>::apply(
                        __request_in(req),
                        &__WitHost,
                    )?;
                    Ok(masks.into_iter().map(__mask_out).collect())
                }
            }

            $crate::bindings::filter::export_filter_world!(__Component with_types_in $crate::bindings::filter);
        };
    };
}
