//! SP 800-90B section 6.3 non-IID min-entropy estimators (work in progress).
