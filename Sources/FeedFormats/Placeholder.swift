public enum FeedFormatsPlaceholder {}
