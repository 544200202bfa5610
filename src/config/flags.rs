//! The flag layer: `provd serve` gets one flag per declared setting plus
//! `--config`. The flags are built with clap's builder API from the
//! [`Setting`] table rather than a derive, so a new setting needs no flag
//! code; values stay text here and are parsed with the other layers', so a
//! bad flag fails like a bad variable, naming it.

use std::path::PathBuf;

use clap::error::ErrorKind;
use clap::{Arg, ArgAction, ArgMatches, Args, Command, FromArgMatches};

use super::declare::{Raw, Setting};
use super::layers::{Layers, Source};
use super::{CONFIG_FILE_ENV, Config};

const CONFIG_ID: &str = "config";

/// Values given on the command line; a setting not given keeps the lower
/// layers' value. Flatten it into a clap command (`#[command(flatten)]`).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--config`: the TOML file (else `PROVD_CONFIG`).
    pub config_file: Option<PathBuf>,
    /// Flag text by setting key, parsed at load.
    pub(super) values: Vec<(&'static str, Raw)>,
}

impl Overrides {
    pub(crate) fn apply(&self, layers: &mut Layers<'_>) {
        for (key, raw) in &self.values {
            layers.set(key, raw.clone(), Source::Flag);
        }
    }
}

/// The clap id of a setting's flag: its long name.
fn flag_id(setting: &Setting) -> &'static str {
    setting.flag.trim_start_matches('-')
}

fn help(setting: &Setting) -> String {
    let doc: Vec<&str> = setting.doc.iter().map(|line| line.trim()).collect();
    format!(
        "{} [file: {}] [env: {}] [e.g. {}]",
        doc.join(" "),
        setting.key,
        setting.env,
        setting.example
    )
}

impl Args for Overrides {
    fn augment_args(command: Command) -> Command {
        let config = Arg::new(CONFIG_ID)
            .long(CONFIG_ID)
            .value_name("FILE")
            .value_parser(clap::value_parser!(PathBuf))
            .help(format!(
                "TOML config file (see deploy/config/provd.example.toml) [env: {CONFIG_FILE_ENV}]"
            ));
        Config::settings()
            .iter()
            .fold(command.arg(config), |command, setting| {
                let id = flag_id(setting);
                let action = if setting.list {
                    ArgAction::Append
                } else {
                    ArgAction::Set
                };
                command.arg(
                    Arg::new(id)
                        .long(id)
                        .value_name("VALUE")
                        .value_parser(clap::value_parser!(String))
                        .action(action)
                        .help(help(setting)),
                )
            })
    }

    fn augment_args_for_update(command: Command) -> Command {
        Self::augment_args(command)
    }
}

impl FromArgMatches for Overrides {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        // The typed getters panic on an id or type mismatch; these return it.
        let mismatch = |e: clap::parser::MatchesError| clap::Error::raw(ErrorKind::InvalidValue, e);
        let config_file = matches
            .try_get_one::<PathBuf>(CONFIG_ID)
            .map_err(mismatch)?
            .cloned();
        let mut values = Vec::new();
        for setting in Config::settings() {
            let Some(given) = matches
                .try_get_many::<String>(flag_id(&setting))
                .map_err(mismatch)?
            else {
                continue;
            };
            let given: Vec<String> = given.cloned().collect();
            let raw = if setting.list {
                Raw::Many(given)
            } else {
                // ArgAction::Set keeps only the last occurrence anyway.
                match given.into_iter().last() {
                    Some(value) => Raw::One(value),
                    None => continue,
                }
            };
            values.push((setting.key, raw));
        }
        Ok(Self {
            config_file,
            values,
        })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}
