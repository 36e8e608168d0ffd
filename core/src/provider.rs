//! The upstream providers the gateway sells, and the settings each one needs.

/// An upstream AI provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    OpenAi,
    Anthropic,
    Google,
    ElevenLabs,
    Stability,
}

impl Provider {
    /// The chat providers, as named by customers (`openai`, `anthropic`, `google`/`gemini`).
    pub fn parse_chat(s: &str) -> Option<Provider> {
        match s {
            "openai" => Some(Provider::OpenAi),
            "anthropic" => Some(Provider::Anthropic),
            "google" | "gemini" => Some(Provider::Google),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Provider::OpenAi => "openai",
            Provider::Anthropic => "anthropic",
            Provider::Google => "google",
            Provider::ElevenLabs => "elevenlabs",
            Provider::Stability => "stability",
        }
    }

    /// The `[vars]` entry holding the provider's base URL (configuration, not code).
    pub fn base_url_var(&self) -> &'static str {
        match self {
            Provider::OpenAi => "OPENAI_BASE_URL",
            Provider::Anthropic => "ANTHROPIC_BASE_URL",
            Provider::Google => "GOOGLE_BASE_URL",
            Provider::ElevenLabs => "ELEVENLABS_BASE_URL",
            Provider::Stability => "STABILITY_BASE_URL",
        }
    }

    /// The production base URL, used when the variable is not set.
    pub fn default_base_url(&self) -> &'static str {
        match self {
            Provider::OpenAi => "https://api.openai.com",
            Provider::Anthropic => "https://api.anthropic.com",
            Provider::Google => "https://generativelanguage.googleapis.com",
            Provider::ElevenLabs => "https://api.elevenlabs.io",
            Provider::Stability => "https://api.stability.ai",
        }
    }

    /// The secret holding the gateway's own key for the provider (names of the original guide).
    pub fn api_key_secret(&self) -> &'static str {
        match self {
            Provider::OpenAi => "OPENAI_API_KEY",
            Provider::Anthropic => "ANTHROPIC_API_KEY",
            Provider::Google => "GOOGLE_API_KEY",
            Provider::ElevenLabs => "ELEVENLABS_API_KEY",
            Provider::Stability => "STABILITY_API_KEY",
        }
    }

    pub const ALL: [Provider; 5] = [Provider::OpenAi, Provider::Anthropic, Provider::Google, Provider::ElevenLabs, Provider::Stability];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_names_parse_and_round_trip() {
        for p in [Provider::OpenAi, Provider::Anthropic, Provider::Google] {
            assert_eq!(Provider::parse_chat(p.as_str()), Some(p));
        }
        assert_eq!(Provider::parse_chat("gemini"), Some(Provider::Google));
        assert_eq!(Provider::parse_chat("elevenlabs"), None, "not a chat provider");
    }

    #[test]
    fn every_provider_names_distinct_settings() {
        let mut names: Vec<&str> = Provider::ALL.iter().flat_map(|p| [p.base_url_var(), p.api_key_secret()]).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Provider::ALL.len() * 2);
        assert!(Provider::ALL.iter().all(|p| p.default_base_url().starts_with("https://")));
    }
}
