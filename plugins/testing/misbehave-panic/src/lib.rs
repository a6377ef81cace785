//! Test formatter `misbehave-panic`: panics in `format`, which traps the component; `info`
//! answers normally so the host can load it.

use samgeo_plugin_sdk::{Formatter, Host, Output, PluginInfo, Request};

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

samgeo_plugin_sdk::export_formatter!(Panic);
