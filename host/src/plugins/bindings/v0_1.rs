//! Bindings for `samgeo:plugin@0.1.0` and conversions between its generated types and
//! [`crate::masks`].
//!
//! Both worlds share one set of Rust types: the `filter-plugin` bindings reuse the `types` and
//! `host` interfaces generated for `formatter-plugin` (`with:`), so there is one `Mask` type and
//! one `host` trait implementation for the version.

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::Store;

use crate::masks::{self, FormattedOutput, PluginRequest};

use super::typecheck::check_func;
use super::{Exports, FilterExports, FormatterExports, Info, VersionSupport};
use crate::plugins::limits::HostState;

/// Generated for world `formatter-plugin`; owns the `types` and `host` interfaces.
pub(crate) mod formatter_world {
    wasmtime::component::bindgen!({
        path: "../wit/0.1.0",
        world: "formatter-plugin",
    });
}

/// Generated for world `filter-plugin`, sharing `types` and `host` with [`formatter_world`].
pub(crate) mod filter_world {
    wasmtime::component::bindgen!({
        path: "../wit/0.1.0",
        world: "filter-plugin",
        with: {
            "samgeo:plugin/types": super::formatter_world::samgeo::plugin::types,
            "samgeo:plugin/host": super::formatter_world::samgeo::plugin::host,
        },
    });
}

pub(crate) use formatter_world::samgeo::plugin::host;
pub(crate) use formatter_world::samgeo::plugin::types;

/// The fully qualified export names this version's plugins carry.
const FORMATTER_EXPORT: &str = "samgeo:plugin/formatter@0.1.0";
const FILTER_EXPORT: &str = "samgeo:plugin/filter@0.1.0";

/// This version's entry in [`super::SUPPORTED`].
pub(crate) const SUPPORT: VersionSupport = VersionSupport {
    version: "0.1.0",
    add_to_linker,
    bind,
};

fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    host::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
    types::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
    Ok(())
}

fn bind(linker: &Linker<HostState>, component: &Component) -> wasmtime::Result<Option<Exports>> {
    let engine = component.engine();
    let ty = component.component_type();
    let mut is_formatter = false;
    let mut is_filter = false;
    for (name, _) in ty.exports(engine) {
        is_formatter |= name == FORMATTER_EXPORT;
        is_filter |= name == FILTER_EXPORT;
    }
    match (is_formatter, is_filter) {
        (true, true) => wasmtime::bail!(
            "the component exports both {FORMATTER_EXPORT} and {FILTER_EXPORT}; a plugin is one or the other"
        ),
        (true, false) => {
            let pre = linker.instantiate_pre(component)?;
            let pre = formatter_world::FormatterPluginPre::new(pre)?;
            Ok(Some(Exports::Formatter(Box::new(Formatter(pre)))))
        }
        (false, true) => {
            let pre = linker.instantiate_pre(component)?;
            let pre = filter_world::FilterPluginPre::new(pre)?;
            Ok(Some(Exports::Filter(Box::new(Filter(pre)))))
        }
        (false, false) => Ok(None),
    }
}

/// A pre-linked formatter: every call instantiates it afresh in the caller's store.
struct Formatter(formatter_world::FormatterPluginPre<HostState>);

impl FormatterExports for Formatter {
    fn check_types(&self, store: &mut Store<HostState>) -> wasmtime::Result<Result<(), String>> {
        let instance = self.0.instance_pre().instantiate(&mut *store)?;
        let e = FORMATTER_EXPORT;
        if let Err(m) = check_func::<(), (types::PluginInfo,)>(store, &instance, e, "info")? {
            return Ok(Err(m));
        }
        type FormatResult = (Result<types::Output, String>,);
        check_func::<(types::Request,), FormatResult>(store, &instance, e, "format")
    }

    fn info(&self, store: &mut Store<HostState>) -> wasmtime::Result<Info> {
        let instance = self.0.instantiate(&mut *store)?;
        let info = instance.samgeo_plugin_formatter().call_info(&mut *store)?;
        Ok(info_from(info))
    }

    fn format(
        &self,
        store: &mut Store<HostState>,
        req: &PluginRequest,
        params: &[(String, String)],
    ) -> wasmtime::Result<Result<FormattedOutput, String>> {
        let wit_req = request_to_wit(req, params);
        let instance = self.0.instantiate(&mut *store)?;
        let out = instance
            .samgeo_plugin_formatter()
            .call_format(&mut *store, &wit_req)?;
        Ok(out.map(|o| FormattedOutput {
            content_type: o.content_type,
            file_name: o.file_name,
            bytes: o.bytes,
        }))
    }
}

/// A pre-linked filter: every call instantiates it afresh in the caller's store.
struct Filter(filter_world::FilterPluginPre<HostState>);

impl FilterExports for Filter {
    fn check_types(&self, store: &mut Store<HostState>) -> wasmtime::Result<Result<(), String>> {
        let instance = self.0.instance_pre().instantiate(&mut *store)?;
        let e = FILTER_EXPORT;
        if let Err(m) = check_func::<(), (types::PluginInfo,)>(store, &instance, e, "info")? {
            return Ok(Err(m));
        }
        type ApplyResult = (Result<Vec<types::Mask>, String>,);
        check_func::<(types::Request,), ApplyResult>(store, &instance, e, "apply")
    }

    fn info(&self, store: &mut Store<HostState>) -> wasmtime::Result<Info> {
        let instance = self.0.instantiate(&mut *store)?;
        let info = instance.samgeo_plugin_filter().call_info(&mut *store)?;
        Ok(info_from(info))
    }

    fn apply(
        &self,
        store: &mut Store<HostState>,
        req: &PluginRequest,
        params: &[(String, String)],
    ) -> wasmtime::Result<Result<Vec<masks::Mask>, String>> {
        let wit_req = request_to_wit(req, params);
        let instance = self.0.instantiate(&mut *store)?;
        let out = instance
            .samgeo_plugin_filter()
            .call_apply(&mut *store, &wit_req)?;
        Ok(out.map(|list| list.into_iter().map(mask_from_wit).collect()))
    }
}

/// 0.1.0 components have no version and declare no parameters.
fn info_from(info: types::PluginInfo) -> Info {
    Info {
        name: info.name,
        version: None,
        description: info.description,
        params: Vec::new(),
    }
}

/// Host request → WIT request with `params` (copies the masks).
pub(crate) fn request_to_wit(req: &PluginRequest, params: &[(String, String)]) -> types::Request {
    types::Request {
        masks: types::MaskSet {
            width: req.masks.width,
            height: req.masks.height,
            masks: req.masks.masks.iter().map(mask_to_wit).collect(),
        },
        georef: types::Georef {
            geotransform: req.georef.geotransform.map(|c| types::Geotransform {
                c0: c[0],
                c1: c[1],
                c2: c[2],
                c3: c[3],
                c4: c[4],
                c5: c[5],
            }),
            crs_wkt: req.georef.crs_wkt.clone(),
            epsg: req.georef.epsg,
        },
        params: params.to_vec(),
    }
}

fn mask_to_wit(m: &masks::Mask) -> types::Mask {
    types::Mask {
        id: m.id,
        label: m.label,
        score: m.score,
        stability: m.stability,
        area: m.area,
        bbox: types::Bbox {
            x: m.bbox.x,
            y: m.bbox.y,
            width: m.bbox.width,
            height: m.bbox.height,
        },
        runs: m.runs.clone(),
    }
}

/// WIT mask → host mask (no checks: see `validate`).
pub(crate) fn mask_from_wit(m: types::Mask) -> masks::Mask {
    masks::Mask {
        id: m.id,
        label: m.label,
        score: m.score,
        stability: m.stability,
        area: m.area,
        bbox: masks::BBox {
            x: m.bbox.x,
            y: m.bbox.y,
            width: m.bbox.width,
            height: m.bbox.height,
        },
        runs: m.runs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::masks::{BBox, Georef, Mask, MaskSet};

    #[test]
    fn request_round_trips_through_wit_types() {
        let mask = Mask {
            id: 3,
            label: 9,
            score: 0.5,
            stability: 1.0,
            area: 4,
            bbox: BBox {
                x: 1,
                y: 2,
                width: 2,
                height: 2,
            },
            runs: vec![0, 4],
        };
        let req = PluginRequest {
            masks: MaskSet {
                width: 10,
                height: 10,
                masks: vec![mask.clone()],
            },
            georef: Georef {
                geotransform: Some([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
                crs_wkt: Some("WKT".into()),
                epsg: Some(4326),
            },
            params: vec![("a".into(), "b".into())],
        };
        let wit = request_to_wit(&req, &req.params);
        assert_eq!(wit.georef.geotransform.map(|g| g.c5), Some(6.0));
        assert_eq!(wit.params, req.params);
        let back = mask_from_wit(wit.masks.masks.into_iter().next().unwrap());
        assert_eq!(back, mask);
    }
}
