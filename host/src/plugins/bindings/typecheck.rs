//! Load-time type check of a component's exports against the host's bindings, with the path of
//! the item that differs.
//!
//! A component built from an edited copy of the WIT (a record field renamed or retyped) still
//! carries the real package name, so binding by name succeeds. wasmtime finds the difference
//! when it type-checks a typed function, but its message is the innermost one
//! (``expected `u64` found `u32` ``); the path is only in the error's context chain ("type
//! mismatch for field masks", ...), without the function, the parameter or the lists. This
//! module checks every exported function at load time and rebuilds the path from that chain
//! and the component's own types, e.g.
//! `samgeo:plugin/formatter@0.2.0#format: parameter req.masks.masks[].area: expected u64, found u32`.

use wasmtime::component::types::Type;
use wasmtime::component::{ComponentNamedList, Instance, Lift, Lower};
use wasmtime::Store;

use crate::plugins::limits::HostState;

/// Checks that `interface#func`, exported by `instance`, has the type the host calls it with
/// (`P`, `R`: the generated bindings' parameter and result types). `Ok(Err(message))` names the
/// mismatching item; the outer error is a failure to look the function up.
pub(crate) fn check_func<P, R>(
    store: &mut Store<HostState>,
    instance: &Instance,
    interface: &str,
    func: &str,
) -> wasmtime::Result<Result<(), String>>
where
    P: ComponentNamedList + Lower,
    R: ComponentNamedList + Lift,
{
    let at = format!("{interface}#{func}");
    let Some(iface) = instance.get_export_index(&mut *store, None, interface) else {
        return Ok(Err(format!("{interface}: not exported")));
    };
    let Some(index) = instance.get_export_index(&mut *store, Some(&iface), func) else {
        return Ok(Err(format!("{at}: not exported")));
    };
    let Some(f) = instance.get_func(&mut *store, index) else {
        return Ok(Err(format!("{at}: not a function")));
    };
    let Err(err) = f.typed::<P, R>(&*store) else {
        return Ok(Ok(()));
    };
    let ty = f.ty(&*store);
    let params: Vec<(String, Type)> = ty.params().map(|(n, t)| (n.to_string(), t)).collect();
    let results: Vec<Type> = ty.results().collect();
    let messages: Vec<String> = err.chain().map(|e| e.to_string()).collect();
    Ok(Err(describe(&at, &messages, &params, &results)))
}

/// Builds the message from wasmtime's error chain (outermost first) and the component's types.
fn describe(at: &str, chain: &[String], params: &[(String, Type)], results: &[Type]) -> String {
    let mut side = None;
    let mut fields = Vec::new();
    for m in chain {
        if m.contains("type mismatch with parameters") {
            side = Some(true);
        } else if m.contains("type mismatch with results") {
            side = Some(false);
        } else if let Some(f) = m
            .strip_prefix("type mismatch for field ")
            .or_else(|| m.strip_prefix("type mismatch for case "))
        {
            fields.push(f.trim().to_string());
        }
    }
    let root = chain
        .last()
        .map(|m| {
            m.replace('`', "")
                .replace(", found ", " found ")
                .replace(" found ", ", found ")
        })
        .unwrap_or_else(|| "type mismatch".to_string());
    let path = match side {
        Some(true) => params
            .iter()
            .find_map(|(name, ty)| walk(ty, &fields).map(|p| format!("parameter {name}{p}")))
            .unwrap_or_else(|| format!("parameters ({})", dotted(&fields))),
        Some(false) => results
            .iter()
            .find_map(|ty| walk(ty, &fields).map(|p| format!("result{p}")))
            .unwrap_or_else(|| format!("result ({})", dotted(&fields))),
        None => "signature".to_string(),
    };
    format!("{at}: {path}: {root}")
}

fn dotted(fields: &[String]) -> String {
    fields.join(".")
}

/// The path through `ty` that follows `fields` (record fields and variant cases, in order),
/// with `[]` for list elements, `?` for options and `.ok`/`.err` for results; `None` when
/// `ty` has no such path.
fn walk(ty: &Type, fields: &[String]) -> Option<String> {
    match ty {
        Type::List(l) => walk(&l.ty(), fields).map(|p| format!("[]{p}")),
        Type::Option(o) => walk(&o.ty(), fields).map(|p| format!("?{p}")),
        Type::Result(r) => r
            .ok()
            .and_then(|t| walk(&t, fields).map(|p| format!(".ok{p}")))
            .or_else(|| {
                r.err()
                    .and_then(|t| walk(&t, fields).map(|p| format!(".err{p}")))
            }),
        _ if fields.is_empty() => Some(String::new()),
        Type::Record(r) => {
            let field = r.fields().find(|f| f.name == fields[0])?;
            walk(&field.ty, &fields[1..]).map(|p| format!(".{}{p}", fields[0]))
        }
        Type::Variant(v) => {
            let case = v.cases().find(|c| c.name == fields[0])?;
            match &case.ty {
                Some(t) => walk(t, &fields[1..]).map(|p| format!(".{}{p}", fields[0])),
                None if fields.len() == 1 => Some(format!(".{}", fields[0])),
                None => None,
            }
        }
        Type::Tuple(t) => t.types().find_map(|t| walk(&t, fields)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_types_the_chain_alone_gives_the_path() {
        let chain: Vec<String> = [
            "type mismatch with parameters",
            "type mismatch for field masks",
            "type mismatch for field masks",
            "type mismatch for field area",
            "expected `u64` found `u32`",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            describe("i#f", &chain, &[], &[]),
            "i#f: parameters (masks.masks.area): expected u64, found u32"
        );
        // A renamed field: wasmtime's message has its own comma, which is kept single.
        let chain = [
            "type mismatch with parameters".to_string(),
            "expected record field named `area`, found `pixels`".to_string(),
        ];
        assert_eq!(
            describe("i#f", &chain, &[], &[]),
            "i#f: parameters (): expected record field named area, found pixels"
        );
    }
}
