//! `$VAR` and `${VAR}` in callback URLs, headers and bodies, from the
//! environment (the downward API puts `POD_NAME`, `POD_NAMESPACE` there).
//! A variable that is not set is an error, not an empty string: a callback
//! naming no pod is worse than none. `$$` is a literal `$`.

use crate::error::Error;
use std::env;

/// Expands from the environment; an unset or malformed variable is a usage error.
pub fn expand(text: &str) -> Result<String, Error> {
    expand_with(text, |name| env::var(name).ok()).map_err(Error::usage)
}

pub fn expand_with(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, consumed) = if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
            continue;
        } else if let Some(braced) = after.strip_prefix('{') {
            let end = braced
                .find('}')
                .ok_or_else(|| format!("'{text}': '${{' without a closing '}}'"))?;
            (&braced[..end], end + 2)
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], end)
        };
        if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(format!(
                "'{text}': '$' must start a variable name (write $$ for a literal $)"
            ));
        }
        let value = lookup(name).ok_or_else(|| {
            format!("'{text}' uses ${name}, which is not set; set it in the container's env (e.g. from the downward API)")
        })?;
        out.push_str(&value);
        rest = &after[consumed..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::expand_with;

    fn env(name: &str) -> Option<String> {
        match name {
            "POD_NAME" => Some("web-7d9f".into()),
            "POD_NAMESPACE" => Some("shop".into()),
            _ => None,
        }
    }

    #[test]
    fn expands_both_forms() {
        assert_eq!(
            expand_with("https://hooks.example/$POD_NAMESPACE/${POD_NAME}/done", env).unwrap(),
            "https://hooks.example/shop/web-7d9f/done"
        );
        assert_eq!(
            expand_with("{\"pod\":\"$POD_NAME\",\"cost\":\"$$5\"}", env).unwrap(),
            "{\"pod\":\"web-7d9f\",\"cost\":\"$5\"}"
        );
        assert_eq!(expand_with("no variables", env).unwrap(), "no variables");
    }

    #[test]
    fn unset_and_malformed_are_errors() {
        assert!(expand_with("$NOPE", env)
            .unwrap_err()
            .contains("$NOPE, which is not set"));
        assert!(expand_with("${POD_NAME", env).is_err());
        assert!(expand_with("cost $5", env).is_err());
        assert!(expand_with("trailing $", env).is_err());
    }
}
