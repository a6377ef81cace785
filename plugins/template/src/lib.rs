//! Template formatter plugin `count`: answers with the number of masks, as text/plain.
//!
//! `scripts/new-plugin NAME --kind formatter` copies this file into a new crate (outside the
//! repository if you like) with `NAME` in place of `count`. Everything a plugin needs comes
//! from the SDK crate `samgeo-plugin-sdk`: the types, the traits, and the one-line export.

use samgeo_plugin_sdk::{Formatter, Host, LogLevel, Output, ParamType, PluginInfo, Request};

/// The name clients ask for with `output_format=...`.
pub const NAME: &str = "count";

/// The plugin: a type that implements [`Formatter`] (it holds no state: the host makes a
/// fresh instance for every call).
pub struct Plugin;

impl Formatter for Plugin {
    /// Name, description and the parameters the plugin reads. The host checks their values
    /// before calling (a request with `suffix=` of the wrong type never gets here), lists them
    /// in `GET /plugins` and documents them in `/openapi.json`. The version is filled in from
    /// Cargo.toml.
    fn info() -> PluginInfo {
        PluginInfo::new(NAME, "Number of masks as text/plain (template plugin)").param(
            "suffix",
            ParamType::String,
            None,
            "Text written after the number",
        )
    }

    /// The masks, the georeferencing and the parameters in; the HTTP body out. An `Err`
    /// reaches the client as a 400 naming the plugin; a panic is a 502 (details in the log).
    fn format(req: Request, host: &dyn Host) -> Result<Output, String> {
        host.log(
            LogLevel::Debug,
            &format!("counting {} masks", req.masks.masks.len()),
        );
        Ok(Output {
            content_type: "text/plain; charset=utf-8".to_string(),
            file_name: format!("{NAME}.txt"),
            bytes: body(req.masks.masks.len(), req.params.get("suffix")).into_bytes(),
        })
    }
}

/// The response body for `n` masks. Plain functions like this one are where the logic lives,
/// so `cargo test` checks it natively.
pub fn body(n: usize, suffix: Option<&str>) -> String {
    format!("{n}{}\n", suffix.unwrap_or(""))
}

// Exports `Plugin` as the component's formatter (compiles to nothing natively).
samgeo_plugin_sdk::export_formatter!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;
    use samgeo_plugin_sdk::testutil::rect_mask;
    use samgeo_plugin_sdk::{MaskSet, NoHost, Params};

    #[test]
    fn body_is_the_count() {
        let req = Request {
            masks: MaskSet {
                width: 4,
                height: 4,
                masks: vec![rect_mask(1, 1, 0, 0, 2, 2), rect_mask(2, 2, 2, 2, 2, 2)],
            },
            params: Params::from_pairs(&[("suffix", "x")]),
            ..Request::default()
        };
        let out = Plugin::format(req, &NoHost).unwrap();
        assert_eq!(out.bytes, b"2x\n");
        assert_eq!(Plugin::info().name, NAME);
        assert_eq!(body(0, None), "0\n");
    }
}
