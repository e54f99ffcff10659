// The build's assemblies for the scripts here: `#load "references.fsx"` after `dotnet build Vae.Cli -c Release`.
#r "../../Vae.Cli/bin/Release/net10.0/TorchSharp.dll"
#r "../../Vae.Cli/bin/Release/net10.0/Vae.Data.dll"
#r "../../Vae.Cli/bin/Release/net10.0/Vae.Core.dll"
