// Starts Swagger UI on /docs. Part of this service (MIT licence, see LICENSE); a file of its own
// because the pages' content-security policy runs no inline script. Swagger UI itself is
// swagger-ui-dist (Apache-2.0), served from the fastapi-offline package's copy.
window.addEventListener("DOMContentLoaded", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.openapiUrl,
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
    layout: "BaseLayout",
  });
});
