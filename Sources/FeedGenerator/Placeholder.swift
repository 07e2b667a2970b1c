public enum FeedGeneratorPlaceholder {}
