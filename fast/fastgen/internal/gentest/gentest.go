// Package gentest holds codecs generated for the template files of ../shared/conformance
// and an extensions file, for the differential test of fast/fastgen. fixtures/templates.xml
// and the MOEX ASTS file are tested through the committed codecs (fast/codecs/ffcodec,
// fast/codecs/moexasts), not through copies of them.
package gentest

//go:generate go run fastfeed/fast/fastgen/cmd/fastgen -t ../../../../../shared/conformance/fast-spec/spec_templates.xml -pkg spec -o spec/spec.go
//go:generate go run fastfeed/fast/fastgen/cmd/fastgen -t ../../../../../shared/conformance/fast-spec/spec2_templates.xml -pkg spec2 -o spec2/spec2.go
//go:generate go run fastfeed/fast/fastgen/cmd/fastgen -t ../../../../../shared/conformance/exchange-templates/moex_forts_spectra_templates.xml -pkg forts -o forts/forts.go
//go:generate go run fastfeed/fast/fastgen/cmd/fastgen -t ../../../../../shared/conformance/exchange-templates/b3_umdf_puma_templates_5.1.13.xml -pkg b3 -o b3/b3.go
//go:generate go run fastfeed/fast/fastgen/cmd/fastgen -t ../../../../../shared/conformance/exchange-templates/eurex_emdi_EMDSFastTemplates-1.1.xml -pkg eurex -o eurex/eurex.go
//go:generate go run fastfeed/fast/fastgen/cmd/fastgen -t ../../../../../shared/conformance/exchange-templates/fast_scp_1.1.xml -pkg scp -o scp/scp.go
//go:generate go run fastfeed/fast/fastgen/cmd/fastgen -t testdata/extensions.xml -pkg ext -o ext/ext.go
