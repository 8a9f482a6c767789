//! vtde-export: checkpoint → vtde model package.
