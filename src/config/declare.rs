//! The one declaration of every setting. A section is written once with
//! [`section!`]: each field's type, doc, TOML key, environment variable,
//! flag, example, parser and default. From that single list the macro
//! generates the public struct, the table the file, environment and flag
//! layers are driven by ([`Setting`]), and the code that turns the layered
//! text into the typed struct. Nothing else needs editing to add a setting.

use super::layers::Source;

/// What the layers know about a setting: its names in each layer. The typed
/// half (parser, default) lives in the generated `from_layers`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Setting {
    /// Dotted TOML key: `listen`, `tls.cert`.
    pub(crate) key: &'static str,
    /// Environment variable: `PROVD_TLS_CERT`.
    pub(crate) env: &'static str,
    /// Command-line flag with its dashes: `--tls-cert`.
    pub(crate) flag: &'static str,
    /// A valid value, shown in `--help` and used by the tests that drive
    /// every setting through every layer.
    pub(crate) example: &'static str,
    /// The field's doc comment, one entry per line.
    pub(crate) doc: &'static [&'static str],
    /// Takes several values: a TOML array, a comma-separated variable, a
    /// repeated flag.
    pub(crate) list: bool,
    /// What separates a list's items in its variable: comma or space, or
    /// comma only for items that hold spaces (names).
    pub(crate) separators: &'static [char],
}

/// A setting's value as text, before its parser runs; layers replace each
/// other's at this stage so a lower layer's value is never even parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Raw {
    One(String),
    Many(Vec<String>),
}

/// Turns a setting's text into its type. Implemented for every
/// `fn(&str, &Source) -> Result<T, String>` (one value) and for [`Each`]
/// (a list); the error is the reason only, the caller adds where it came
/// from.
pub(crate) trait Parse<T> {
    const LIST: bool;
    /// What separates items in an environment variable (lists only).
    const SEPARATORS: &'static [char] = &[',', ' '];
    fn parse(&self, raw: &Raw, source: &Source) -> Result<T, String>;
}

impl<T, F> Parse<T> for F
where
    F: Fn(&str, &Source) -> Result<T, String>,
{
    const LIST: bool = false;
    fn parse(&self, raw: &Raw, source: &Source) -> Result<T, String> {
        match raw {
            Raw::One(value) => self(value, source),
            Raw::Many(_) => Err("takes one value, not a list".into()),
        }
    }
}

/// A list setting whose items each parse with the inner function.
pub(crate) struct Each<F>(pub(crate) F);

impl<T, F> Parse<Vec<T>> for Each<F>
where
    F: Fn(&str, &Source) -> Result<T, String>,
{
    const LIST: bool = true;
    fn parse(&self, raw: &Raw, source: &Source) -> Result<Vec<T>, String> {
        match raw {
            Raw::One(value) => Ok(vec![(self.0)(value, source)?]),
            Raw::Many(values) => values.iter().map(|v| (self.0)(v, source)).collect(),
        }
    }
}

/// A list setting whose items may hold spaces (names): its variable is
/// split at commas only.
pub(crate) struct EachComma<F>(pub(crate) F);

impl<T, F> Parse<Vec<T>> for EachComma<F>
where
    F: Fn(&str, &Source) -> Result<T, String>,
{
    const LIST: bool = true;
    const SEPARATORS: &'static [char] = &[','];
    fn parse(&self, raw: &Raw, source: &Source) -> Result<Vec<T>, String> {
        Each(&self.0).parse(raw, source)
    }
}

/// Lets the generated table read [`Parse::LIST`] from a parser value whose
/// type can't be named (a function item).
pub(crate) const fn is_list<T, P: Parse<T>>(_: &P) -> bool {
    P::LIST
}

/// [`Parse::SEPARATORS`], read the same way.
pub(crate) const fn separators<T, P: Parse<T>>(_: &P) -> &'static [char] {
    P::SEPARATORS
}

/// What a setting is when no layer gives it.
pub(crate) enum Fallback<T> {
    Required,
    Value(T),
}

/// The environment as the loader sees it (injected for tests). Defaults
/// that depend on the platform's own variables (`ProgramData`) read it.
pub(crate) type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Declares a section; see the module doc. Grammar, per field:
///
/// ```text
/// /// doc
/// pub field: Type {
///     toml: "section.key", env: "PROVD_…", flag: "--…", example: "…",
///     parse: parser_fn,            // or Each(item_parser_fn) for a list,
///                                  // EachComma(…) when items hold spaces
///     default: expr                // or `required`, or `from_env fn(Lookup) -> Type`
/// }
/// ```
///
/// `pub struct Name: Default { … }` also implements `Default` from the
/// declared defaults. A trailing `sections { pub name: Type, … }` nests
/// other sections (how `Config` holds them).
macro_rules! section {
    // `Default` from the declared defaults (the process environment is not
    // consulted: `from_env` defaults see an empty one).
    (@default $name:ident {
        $( $(#[doc = $doc:literal])* pub $field:ident: $ty:ty {
            toml: $key:literal, env: $env:literal, flag: $flag:literal,
            example: $example:literal, parse: $parse:expr, default: $($default:tt)+
        } )*
    }) => {
        impl Default for $name {
            fn default() -> Self {
                Self { $( $field: $crate::config::declare::section!(@default_value $($default)+), )* }
            }
        }
    };
    (@default_value required) => {
        compile_error!("a section with a required setting cannot implement Default")
    };
    (@default_value from_env $f:expr) => { ($f)(&|_: &str| None) };
    (@default_value $e:expr) => { $e };

    (@fallback $layers:ident; required) => { $crate::config::declare::Fallback::Required };
    (@fallback $layers:ident; from_env $f:expr) => {
        $crate::config::declare::Fallback::Value(($f)($layers.env()))
    };
    (@fallback $layers:ident; $e:expr) => { $crate::config::declare::Fallback::Value($e) };

    (
        $(#[$meta:meta])*
        pub struct $name:ident: Default { $($body:tt)* }
    ) => {
        $crate::config::declare::section! { $(#[$meta])* pub struct $name { $($body)* } }
        $crate::config::declare::section! { @default $name { $($body)* } }
    };

    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[doc = $doc:literal])* pub $field:ident: $ty:ty {
                toml: $key:literal, env: $env:literal, flag: $flag:literal,
                example: $example:literal, parse: $parse:expr, default: $($default:tt)+
            } )*
        }
        $( sections { $( $(#[doc = $sdoc:literal])* pub $sec:ident: $sty:ty ),* $(,)? } )?
    ) => {
        $(#[$meta])*
        pub struct $name {
            $( $(#[doc = $doc])* pub $field: $ty, )*
            $( $( $(#[doc = $sdoc])* pub $sec: $sty, )* )?
        }

        impl $name {
            /// Every setting of this section (and the sections it holds),
            /// in declaration order.
            pub(crate) fn settings() -> Vec<$crate::config::declare::Setting> {
                #[allow(unused_mut)]
                let mut all = vec![$(
                    $crate::config::declare::Setting {
                        key: $key,
                        env: $env,
                        flag: $flag,
                        example: $example,
                        doc: &[$($doc),*],
                        list: $crate::config::declare::is_list::<$ty, _>(&$parse),
                        separators: $crate::config::declare::separators::<$ty, _>(&$parse),
                    },
                )*];
                $( $( all.extend(<$sty>::settings()); )* )?
                all
            }

            /// The typed section from the layered text: each setting's
            /// winning value through its parser, else its default.
            pub(crate) fn from_layers(
                layers: &$crate::config::layers::Layers<'_>,
            ) -> Result<Self, $crate::config::ConfigError> {
                Ok(Self {
                    $( $field: layers.value::<$ty, _>(
                        &$crate::config::declare::Setting {
                            key: $key,
                            env: $env,
                            flag: $flag,
                            example: $example,
                            doc: &[$($doc),*],
                            list: $crate::config::declare::is_list::<$ty, _>(&$parse),
                            separators: $crate::config::declare::separators::<$ty, _>(&$parse),
                        },
                        &$parse,
                        $crate::config::declare::section!(@fallback layers; $($default)+),
                    )?, )*
                    $( $( $sec: <$sty>::from_layers(layers)?, )* )?
                })
            }
        }
    };
}

pub(crate) use section;
