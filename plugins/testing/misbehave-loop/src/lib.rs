//! Test formatter `misbehave-loop`: never returns from `format` (a busy loop), so the host's
//! CPU limit (epoch interruption or fuel) must stop it.

use samgeo_plugin_sdk::{Formatter, Host, Output, PluginInfo, Request};

/// The plugin.
pub struct Loop;

impl Formatter for Loop {
    fn info() -> PluginInfo {
        PluginInfo::new("misbehave-loop", "Test plugin: format never returns")
    }

    fn format(req: Request, _host: &dyn Host) -> Result<Output, String> {
        let mut n = u64::from(req.masks.width);
        loop {
            // black_box keeps the optimiser from reasoning the loop away.
            n = std::hint::black_box(n.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
}

samgeo_plugin_sdk::export_formatter!(Loop);
