// Starts Swagger UI on this page's OpenAPI document. It is a file, not an
// inline script, so that the page's Content-Security-Policy can allow
// scripts from the page's own origin only. validatorUrl: null keeps Swagger
// UI from sending the document to validator.swagger.io.
window.ui = SwaggerUIBundle({
  url: "../openapi.json",
  dom_id: "#swagger-ui",
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
  layout: "StandaloneLayout",
  validatorUrl: null
});
