//! Test formatter `misbehave-alloc`: allocates about 1 GiB in 16 MiB steps, writing to every
//! page, so the host's memory limit must stop it (the failed allocation traps). Parameter
//! `alloc_mib` changes the total (default 1024). Should the host allow it all, `format`
//! answers text/plain with the number of bytes it held.

use samgeo_plugin_sdk::{Formatter, Host, Output, PluginInfo, Request};

/// The plugin.
pub struct Alloc;

const STEP: usize = 16 << 20;

impl Formatter for Alloc {
    fn info() -> PluginInfo {
        PluginInfo::new("misbehave-alloc", "Test plugin: allocates about 1 GiB")
    }

    fn format(req: Request, _host: &dyn Host) -> Result<Output, String> {
        let mib = req.params.get_i64("alloc_mib")?.unwrap_or(1024).max(0) as usize;
        let total = grab(mib << 20);
        Ok(Output {
            content_type: "text/plain".into(),
            file_name: "alloc.txt".into(),
            bytes: format!("held {total} bytes\n").into_bytes(),
        })
    }
}

/// Allocates `bytes` in `STEP` chunks, touching every 4 KiB page; returns the bytes held.
pub fn grab(bytes: usize) -> usize {
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    let mut held = 0;
    while held < bytes {
        let n = STEP.min(bytes - held);
        let mut c = vec![0u8; n];
        for i in (0..n).step_by(4096) {
            c[i] = 1;
        }
        held += std::hint::black_box(&c).len();
        chunks.push(c);
    }
    std::hint::black_box(&chunks);
    held
}

samgeo_plugin_sdk::export_formatter!(Alloc);

#[cfg(test)]
mod tests {
    #[test]
    fn grabs_what_it_is_asked() {
        assert_eq!(super::grab(20 << 20), 20 << 20);
    }
}
