//! Test formatter `misbehave-garbage`: returns an output no HTTP response may carry as is.
//!
//! Parameter `mode`:
//! * `header` (default): content type `text/plain\r\nX-Injected: yes` (CR LF inside a header
//!   value) and an empty file name;
//! * `traversal`: file name `../../etc/passwd`;
//! * `control`: content type and file name with NUL and other control characters;
//! * `huge-name`: a 1 MiB file name.

use samgeo_plugin_sdk::{Formatter, Host, Output, PluginInfo, Request};

/// The plugin.
pub struct Garbage;

impl Formatter for Garbage {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "misbehave-garbage",
            "Test plugin: returns an invalid content type and file name",
        )
    }

    fn format(req: Request, _host: &dyn Host) -> Result<Output, String> {
        garbage(req.params.get("mode").unwrap_or("header"))
    }
}

/// The garbage output for `mode`.
pub fn garbage(mode: &str) -> Result<Output, String> {
    let (content_type, file_name) = match mode {
        "header" => ("text/plain\r\nX-Injected: yes".to_owned(), String::new()),
        "traversal" => ("text/plain".to_owned(), "../../etc/passwd".to_owned()),
        "control" => ("text/\0plain\x07".to_owned(), "a\0b\x1b.txt".to_owned()),
        "huge-name" => ("text/plain".to_owned(), "x".repeat(1 << 20)),
        other => return Err(format!("parameter `mode`: unknown {other:?}")),
    };
    Ok(Output {
        content_type,
        file_name,
        bytes: b"garbage\n".to_vec(),
    })
}

samgeo_plugin_sdk::export_formatter!(Garbage);

#[cfg(test)]
mod tests {
    #[test]
    fn modes() {
        let o = super::garbage("header").unwrap();
        assert!(o.content_type.contains("\r\n") && o.file_name.is_empty());
        assert!(super::garbage("nope").is_err());
    }
}
