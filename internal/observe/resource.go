package observe

import (
	sdkresource "go.opentelemetry.io/otel/sdk/resource"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
)

func resource(version string) *sdkresource.Resource {
	r, err := sdkresource.Merge(sdkresource.Default(), sdkresource.NewSchemaless(
		semconv.ServiceName("mcptower"), semconv.ServiceVersion(version)))
	if err != nil {
		return sdkresource.Default()
	}
	return r
}
