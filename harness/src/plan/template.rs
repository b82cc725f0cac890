//! Templates for node arguments and environment (`--listen={host}:{port}`):
//! parsing with the set of placeholders valid where the template appears, and
//! rendering. Rendering is pure string work; it never fails or panics.

use super::types::{ArgTemplate, Placeholder, Template, TemplatePart};
use std::fmt;

/// Where a template appears, which decides the placeholders it may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TemplateScope {
    /// A node's `args` element or `env` value.
    Node,
    /// An element of `{ each_peer = [...] }`: node placeholders plus `{peer}`.
    EachPeer,
    /// The peers `format`: one peer, by `{id}`, `{name}`, `{host}`, `{port}`.
    PeersFormat,
}

impl TemplateScope {
    /// The placeholders valid in this scope, in documentation order.
    pub fn allowed(self) -> &'static [Placeholder] {
        use Placeholder::*;
        match self {
            TemplateScope::Node => &[Id, Name, Host, Port, PeerPort, DataDir, Peers],
            TemplateScope::EachPeer => &[Id, Name, Host, Port, PeerPort, DataDir, Peers, Peer],
            TemplateScope::PeersFormat => &[Id, Name, Host, Port],
        }
    }
}

impl Placeholder {
    /// Every placeholder, in documentation order.
    pub const ALL: [Placeholder; 8] = [
        Placeholder::Id,
        Placeholder::Name,
        Placeholder::Host,
        Placeholder::Port,
        Placeholder::PeerPort,
        Placeholder::DataDir,
        Placeholder::Peers,
        Placeholder::Peer,
    ];

    /// The name written between braces: `peer_port` for `{peer_port}`.
    pub fn name(self) -> &'static str {
        match self {
            Placeholder::Id => "id",
            Placeholder::Name => "name",
            Placeholder::Host => "host",
            Placeholder::Port => "port",
            Placeholder::PeerPort => "peer_port",
            Placeholder::DataDir => "data_dir",
            Placeholder::Peers => "peers",
            Placeholder::Peer => "peer",
        }
    }

    pub fn from_name(name: &str) -> Option<Placeholder> {
        Placeholder::ALL.into_iter().find(|p| p.name() == name)
    }
}

impl fmt::Display for Placeholder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{}}}", self.name())
    }
}

impl Template {
    /// A template without placeholders; braces in `text` stay literal.
    pub fn literal(text: &str) -> Template {
        let parts = if text.is_empty() {
            Vec::new()
        } else {
            vec![TemplatePart::Lit(text.to_string())]
        };
        Template { parts }
    }

    /// Parses `src`, accepting only the placeholders valid in `scope`.
    /// `{{` and `}}` stand for literal braces. The error says which
    /// placeholder is wrong and lists the valid ones.
    pub fn parse(src: &str, scope: TemplateScope) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut chars = src.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '{' if chars.peek().map(|&(_, n)| n) == Some('{') => {
                    chars.next();
                    lit.push('{');
                }
                '}' if chars.peek().map(|&(_, n)| n) == Some('}') => {
                    chars.next();
                    lit.push('}');
                }
                '}' => {
                    return Err(format!(
                        "unmatched `}}` at character {}; write `}}}}` for a literal brace",
                        src[..i].chars().count() + 1
                    ))
                }
                '{' => {
                    let rest = &src[i + 1..];
                    let Some(end) = rest.find('}') else {
                        return Err(format!(
                            "unclosed `{{` at character {}; write `{{{{` for a literal brace",
                            src[..i].chars().count() + 1
                        ));
                    };
                    let name = &rest[..end];
                    let placeholder = resolve(name, scope)?;
                    // Skip the name and the closing brace.
                    for _ in 0..name.chars().count() + 1 {
                        chars.next();
                    }
                    if !lit.is_empty() {
                        parts.push(TemplatePart::Lit(std::mem::take(&mut lit)));
                    }
                    parts.push(TemplatePart::Var(placeholder));
                }
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            parts.push(TemplatePart::Lit(lit));
        }
        Ok(Template { parts })
    }

    /// Fills in every placeholder with `value`. A placeholder for which
    /// `value` returns `None` is left in the output as written (`{peer}`), so
    /// a missing value is visible rather than silently empty.
    pub fn render(&self, mut value: impl FnMut(Placeholder) -> Option<String>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                TemplatePart::Lit(s) => out.push_str(s),
                TemplatePart::Var(p) => match value(*p) {
                    Some(v) => out.push_str(&v),
                    None => out.push_str(&p.to_string()),
                },
            }
        }
        out
    }

    /// The placeholders used, in order of appearance (with repeats).
    pub fn placeholders(&self) -> impl Iterator<Item = Placeholder> + '_ {
        self.parts.iter().filter_map(|p| match p {
            TemplatePart::Var(v) => Some(*v),
            TemplatePart::Lit(_) => None,
        })
    }

    pub fn uses(&self, placeholder: Placeholder) -> bool {
        self.placeholders().any(|p| p == placeholder)
    }
}

/// Shows the template as a plan would write it, braces escaped.
impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in &self.parts {
            match part {
                TemplatePart::Lit(s) => f.write_str(&s.replace('{', "{{").replace('}', "}}"))?,
                TemplatePart::Var(p) => write!(f, "{p}")?,
            }
        }
        Ok(())
    }
}

impl ArgTemplate {
    /// Renders one `args` element into zero or more arguments. `peers` holds
    /// each peer already rendered with the peers format; an `each_peer`
    /// element repeats its templates once per peer with `{peer}` bound.
    pub fn render(
        &self,
        mut value: impl FnMut(Placeholder) -> Option<String>,
        peers: &[String],
    ) -> Vec<String> {
        match self {
            ArgTemplate::One(t) => vec![t.render(&mut value)],
            ArgTemplate::EachPeer(ts) => {
                let mut out = Vec::with_capacity(ts.len() * peers.len());
                for peer in peers {
                    for t in ts {
                        out.push(t.render(|p| match p {
                            Placeholder::Peer => Some(peer.clone()),
                            other => value(other),
                        }));
                    }
                }
                out
            }
        }
    }
}

fn resolve(name: &str, scope: TemplateScope) -> Result<Placeholder, String> {
    let allowed = scope.allowed();
    let valid = allowed
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    match Placeholder::from_name(name) {
        Some(p) if allowed.contains(&p) => Ok(p),
        Some(Placeholder::Peer) => Err(format!(
            "`{{peer}}` is only valid inside {{ each_peer = [...] }}; valid here: {valid}"
        )),
        Some(p) => Err(format!("`{p}` is not valid here; valid here: {valid}")),
        None => {
            let guess = allowed
                .iter()
                .map(|p| (strsim::jaro_winkler(name, p.name()), p))
                .filter(|(score, _)| *score >= 0.8)
                .max_by(|a, b| a.0.total_cmp(&b.0));
            match guess {
                Some((_, p)) => Err(format!(
                    "unknown placeholder `{{{name}}}`, did you mean `{p}`? valid here: {valid}"
                )),
                None => Err(format!(
                    "unknown placeholder `{{{name}}}`; valid here: {valid}"
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Placeholder::*;
    use TemplatePart::*;

    fn lit(s: &str) -> TemplatePart {
        Lit(s.to_string())
    }

    #[test]
    fn parses_placeholders_and_escapes() {
        let t = Template::parse("--listen={host}:{port}", TemplateScope::Node).unwrap();
        assert_eq!(
            t.parts,
            vec![lit("--listen="), Var(Host), lit(":"), Var(Port)]
        );
        let t = Template::parse("{{\"id\": {id}}}", TemplateScope::Node).unwrap();
        assert_eq!(t.parts, vec![lit("{\"id\": "), Var(Id), lit("}")]);
        assert_eq!(t.to_string(), "{{\"id\": {id}}}");
        assert_eq!(
            Template::parse("", TemplateScope::Node).unwrap().parts,
            vec![]
        );
        let t = Template::parse("ü{name}ß", TemplateScope::Node).unwrap();
        assert_eq!(t.parts, vec![lit("ü"), Var(Name), lit("ß")]);
    }

    #[test]
    fn unknown_placeholders_are_named_with_the_valid_ones() {
        assert_eq!(
            Template::parse("{nmae}", TemplateScope::Node),
            Err("unknown placeholder `{nmae}`, did you mean `{name}`? valid here: {id}, {name}, {host}, {port}, {peer_port}, {data_dir}, {peers}".into())
        );
        assert_eq!(
            Template::parse("x{zzz}", TemplateScope::PeersFormat),
            Err("unknown placeholder `{zzz}`; valid here: {id}, {name}, {host}, {port}".into())
        );
        assert_eq!(
            Template::parse("{peer}", TemplateScope::Node),
            Err("`{peer}` is only valid inside { each_peer = [...] }; valid here: {id}, {name}, {host}, {port}, {peer_port}, {data_dir}, {peers}".into())
        );
        assert_eq!(
            Template::parse("{data_dir}", TemplateScope::PeersFormat),
            Err("`{data_dir}` is not valid here; valid here: {id}, {name}, {host}, {port}".into())
        );
        assert!(Template::parse("{peer}", TemplateScope::EachPeer).is_ok());
    }

    #[test]
    fn stray_braces_are_rejected() {
        assert_eq!(
            Template::parse("a{name", TemplateScope::Node),
            Err("unclosed `{` at character 2; write `{{` for a literal brace".into())
        );
        assert_eq!(
            Template::parse("a}b", TemplateScope::Node),
            Err("unmatched `}` at character 2; write `}}` for a literal brace".into())
        );
    }

    #[test]
    fn render_fills_values_and_keeps_missing_ones_visible() {
        let t = Template::parse("{name}@{host}:{port}/{data_dir}", TemplateScope::Node).unwrap();
        let out = t.render(|p| match p {
            Name => Some("n1".into()),
            Host => Some("127.0.0.1".into()),
            Port => Some("7001".into()),
            _ => None,
        });
        assert_eq!(out, "n1@127.0.0.1:7001/{data_dir}");
        assert_eq!(Template::literal("{x}").render(|_| None), "{x}");
    }

    #[test]
    fn each_peer_repeats_per_peer() {
        let arg = ArgTemplate::EachPeer(vec![
            Template::literal("--peer"),
            Template::parse("{peer}", TemplateScope::EachPeer).unwrap(),
        ]);
        let peers = vec!["n1=a:1".to_string(), "n2=b:2".to_string()];
        assert_eq!(
            arg.render(|_| None, &peers),
            vec!["--peer", "n1=a:1", "--peer", "n2=b:2"]
        );
        let one = ArgTemplate::One(Template::parse("{id}", TemplateScope::Node).unwrap());
        assert_eq!(one.render(|_| Some("3".into()), &peers), vec!["3"]);
    }
}
