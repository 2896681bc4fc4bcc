"""SD-IDD's selective distillation: region selection and losses as pure tensor functions."""
