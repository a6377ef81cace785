//! Test formatter `misbehave-panic`: panics in `format`, which traps the component; `info`
//! answers normally so the host can load it.

use mask_kit::{Formatter, Host, Output, PluginInfo, Request};

/// The plugin.
pub struct Panic;

impl Formatter for Panic {
    fn info() -> PluginInfo {
        PluginInfo::new("misbehave-panic", "Test plugin: format panics")
    }

    fn format(_req: Request, _host: &dyn Host) -> Result<Output, String> {
        panic!("misbehave-panic: deliberate panic in format")
    }
}

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ world: "formatter-plugin", path: "../../../wit" });
    mask_kit::export_formatter!(super::Panic);
}
