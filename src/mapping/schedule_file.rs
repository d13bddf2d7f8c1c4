//! `--schedule FILE`: schedules pinned by layer name (docs/mapping.md,
//! "Pinning schedules").
//!
//! ```toml
//! [schedules]
//! conv2 = "weight_tile_major/6/glb"
//! conv3 = "pass_major"
//! ```
//!
//! A value is a schedule label as the report writes it
//! (`schedule.search.chosen.schedule`): `pass_major` or
//! `weight_tile_major/TILES/glb|dram` with TILES from 2.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::schedule::{InputReuse, LoopOrder, ScheduleChoice};
use crate::error::InputError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    schedules: BTreeMap<Spanned<String>, Spanned<String>>,
}

const VALID_LABEL: &str =
    "`pass_major` or `weight_tile_major/TILES/glb` or `weight_tile_major/TILES/dram`, TILES from 2";

/// Reads the pins of `path` for a network whose layers are `layer_names`.
pub fn load(
    path: &Path,
    layer_names: &[&str],
) -> Result<BTreeMap<String, ScheduleChoice>, InputError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| InputError::new(path, format!("cannot read the schedule file: {e}")))?;
    parse(&text, path, layer_names)
}

/// The pins written in `text` (read from `path`).
pub fn parse(
    text: &str,
    path: &Path,
    layer_names: &[&str],
) -> Result<BTreeMap<String, ScheduleChoice>, InputError> {
    let raw: Raw =
        toml::from_str(text).map_err(|e| crate::error::from_toml(path, text, &e, &|_| None))?;
    let mut pins = BTreeMap::new();
    for (name, label) in raw.schedules {
        let at = |e: InputError, span| {
            e.context("[schedules]")
                .field(name.get_ref().clone())
                .at(text, Some(span))
        };
        if !layer_names.contains(&name.get_ref().as_str()) {
            let message = format!(
                "no layer of the network is named `{}`; valid: {}",
                name.get_ref(),
                layer_names_list(layer_names)
            );
            return Err(at(InputError::new(path, message), name.span()));
        }
        let choice = parse_label(label.get_ref())
            .map_err(|message| at(InputError::new(path, message), label.span()))?;
        pins.insert(name.into_inner(), choice);
    }
    Ok(pins)
}

/// A schedule label (`ScheduleChoice::label`) back to its choice.
pub fn parse_label(label: &str) -> Result<ScheduleChoice, String> {
    if label == LoopOrder::PassMajor.name() {
        return Ok(ScheduleChoice::PASS_MAJOR);
    }
    let bad = || format!("`{label}` is not a schedule; valid: {VALID_LABEL}");
    let parts: Vec<&str> = label.split('/').collect();
    let [order, tiles, inputs] = parts[..] else {
        return Err(bad());
    };
    if order != LoopOrder::WeightTileMajor.name() {
        return Err(bad());
    }
    let tiles: usize = tiles.parse().map_err(|_| bad())?;
    if tiles < 2 {
        return Err(bad());
    }
    let inputs = [InputReuse::Keep, InputReuse::Refetch]
        .into_iter()
        .find(|i| i.name() == inputs)
        .ok_or_else(bad)?;
    Ok(ScheduleChoice {
        order: LoopOrder::WeightTileMajor,
        tiles,
        inputs,
    })
}

/// The first layer names, for an error message.
fn layer_names_list(names: &[&str]) -> String {
    const SHOWN: usize = 12;
    let mut list: Vec<String> = names.iter().take(SHOWN).map(|n| format!("`{n}`")).collect();
    if names.len() > SHOWN {
        list.push(format!("... ({} layers)", names.len()));
    }
    list.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Result<BTreeMap<String, ScheduleChoice>, String> {
        parse(text, Path::new("s.toml"), &["conv1", "conv2"]).map_err(|e| e.to_string())
    }

    #[test]
    fn labels_read_back_as_the_report_writes_them() {
        let pins = parse_text(
            "[schedules]\nconv1 = \"pass_major\"\nconv2 = \"weight_tile_major/6/dram\"\n",
        );
        let want = ScheduleChoice {
            order: LoopOrder::WeightTileMajor,
            tiles: 6,
            inputs: InputReuse::Refetch,
        };
        assert_eq!(
            pins,
            Ok(BTreeMap::from([
                ("conv1".to_string(), ScheduleChoice::PASS_MAJOR),
                ("conv2".to_string(), want)
            ]))
        );
        assert_eq!(parse_label(&want.label()), Ok(want));
    }

    #[test]
    fn errors_name_the_line_the_field_and_what_is_valid() {
        assert_eq!(
            parse_text("[schedules]\nconv9 = \"pass_major\"\n"),
            Err(
                "s.toml:2:1: [schedules], field `conv9`: no layer of the network is named \
                 `conv9`; valid: `conv1`, `conv2`"
                    .to_string()
            )
        );
        assert_eq!(
            parse_text(
                "[schedules]\nconv1 = \"pass_major\"\nconv2 = \"weight_tile_major/1/glb\"\n"
            ),
            Err(format!(
                "s.toml:3:9: [schedules], field `conv2`: `weight_tile_major/1/glb` is not a \
                 schedule; valid: {VALID_LABEL}"
            ))
        );
    }
}
