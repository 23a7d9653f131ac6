package httpapi

// DocAssets are the files embedded for /docs/ and /redoc/, for tests that
// walk everything served there.
var DocAssets = assets
