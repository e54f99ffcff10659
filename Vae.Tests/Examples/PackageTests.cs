using System.IO.Compression;

namespace Vae.Tests.Examples;

/// <summary>dotnet pack makes installable packages of the core and the façade.</summary>
public class PackageTests
{
    static async Task<string> Dotnet(string workingDirectory, params string[] args)
    {
        var (code, output, errors) = await TestEnvironment.RunProcessAsync("dotnet", args, workingDirectory);
        Assert.True(code == 0, $"dotnet {string.Join(' ', args)}: exit {code}\n{output}{errors}");
        return output + errors;
    }

    /// <summary>NuGet's package root is written with or without a trailing slash (NUGET_PACKAGES=/root/.nuget/packages
    /// gives the latter): the core's pack step that copies TorchSharp's natives finds them either way.</summary>
    [Fact]
    public async Task PackingTheCoreFindsTorchSharpWhateverTheNuGetRootsTrailingSlash()
    {
        string root = TestEnvironment.NuGetPackageRoot.TrimEnd('/');
        string output = await Dotnet(TestEnvironment.RepositoryRoot, "msbuild", "Vae.Core.FSharp/Vae.Core.FSharp.fsproj", "-t:VaePackPatchedLibTorchSharp",
            $"-p:Configuration={TestEnvironment.Configuration}", $"-p:NuGetPackageRoot={root}", "-nologo");
        Assert.DoesNotContain("MSB3030", output);
    }

    [Fact]
    public async Task PackagesCarryDocsReadmeLicenceAndTheLoadFixAndInstallIntoAFreshProject()
    {
        string root = TestEnvironment.NewTempDirectory(), feed = Path.Combine(root, "feed"), app = Path.Combine(root, "app");
        // A version of its own, so that the NuGet cache never serves an older build of these packages.
        string version = "0.1.0-test." + Guid.NewGuid().ToString("N")[..10];
        foreach (string project in new[] { "Vae.Data.FSharp/Vae.Data.FSharp.fsproj", "Vae.Core.FSharp/Vae.Core.FSharp.fsproj", "Vae.CSharp/Vae.CSharp.csproj", "Vae.Experiments/Vae.Experiments.csproj" })
            await Dotnet(TestEnvironment.RepositoryRoot, "pack", project, "-c", TestEnvironment.Configuration, "--no-build", "--no-restore", "-o", feed, $"-p:PackageVersion={version}", "-nologo");
        try
        {
            using (var core = ZipFile.OpenRead(Path.Combine(feed, $"Vae.Core.{version}.nupkg")))
            {
                var names = core.Entries.Select(e => e.FullName).ToHashSet();
                foreach (string entry in new[] { "README.md", "lib/net10.0/Vae.Core.dll", "lib/net10.0/Vae.Core.xml", "buildTransitive/Vae.Core.targets", "buildTransitive/LibTorchLoadFix.targets", "buildTransitive/ElfVersionNeeds.cs" })
                    Assert.Contains(entry, names);
            }
            using (var data = ZipFile.OpenRead(Path.Combine(feed, $"Vae.Data.{version}.nupkg")))
            {
                Assert.Contains("lib/net10.0/Vae.Data.dll", data.Entries.Select(e => e.FullName));
                using var coreSpec = new StreamReader(ZipFile.OpenRead(Path.Combine(feed, $"Vae.Core.{version}.nupkg")).GetEntry("Vae.Core.nuspec")!.Open());
                Assert.Contains($"<dependency id=\"Vae.Data\" version=\"{version}\"", await coreSpec.ReadToEndAsync());
            }
            using (var facade = ZipFile.OpenRead(Path.Combine(feed, $"Vae.{version}.nupkg")))
            {
                Assert.Contains("lib/net10.0/Vae.xml", facade.Entries.Select(e => e.FullName));
                using var reader = new StreamReader(facade.GetEntry("Vae.nuspec")!.Open());
                string nuspec = await reader.ReadToEndAsync();
                Assert.Contains("<license type=\"expression\">MIT</license>", nuspec);
                Assert.Contains($"<dependency id=\"Vae.Core\" version=\"{version}\" include=\"All\" />", nuspec);
                Assert.Contains("<dependency id=\"TorchSharp\" version=\"0.107.0\"", nuspec);
                Assert.DoesNotContain("Vae.Experiments", nuspec);
            }
            // Each package has its own README (the repository's front page is not a package's), symbols beside it as a
            // .snupkg holding the portable PDB, and passed package validation during pack.
            foreach (string id in new[] { "Vae.Data", "Vae.Core", "Vae", "Vae.Experiments" })
            {
                using var package = ZipFile.OpenRead(Path.Combine(feed, $"{id}.{version}.nupkg"));
                using var readme = new StreamReader(package.GetEntry("README.md")!.Open());
                Assert.StartsWith($"# {id}\n", (await readme.ReadToEndAsync()).ReplaceLineEndings("\n"));
                using var symbols = ZipFile.OpenRead(Path.Combine(feed, $"{id}.{version}.snupkg"));
                Assert.Contains($"lib/net10.0/{id}.pdb", symbols.Entries.Select(e => e.FullName));
            }
            // The laboratory is a package of its own on top of the library.
            using (var experiments = ZipFile.OpenRead(Path.Combine(feed, $"Vae.Experiments.{version}.nupkg")))
            {
                Assert.Contains("lib/net10.0/Vae.Experiments.dll", experiments.Entries.Select(e => e.FullName));
                using var reader = new StreamReader(experiments.GetEntry("Vae.Experiments.nuspec")!.Open());
                Assert.Contains($"<dependency id=\"Vae\" version=\"{version}\"", await reader.ReadToEndAsync());
            }

            // A fresh project outside this repository: the machine's package sources plus the local feed.
            Directory.CreateDirectory(app);
            File.WriteAllText(Path.Combine(app, "nuget.config"), $"""
                <?xml version="1.0" encoding="utf-8"?>
                <configuration><packageSources><add key="vae-local" value="{feed}" /></packageSources></configuration>
                """);
            File.WriteAllText(Path.Combine(app, "app.csproj"), $"""
                <Project Sdk="Microsoft.NET.Sdk">
                  <PropertyGroup><OutputType>Exe</OutputType><TargetFramework>net10.0</TargetFramework><Nullable>enable</Nullable><ImplicitUsings>enable</ImplicitUsings></PropertyGroup>
                  <ItemGroup>
                    <PackageReference Include="Vae" Version="{version}" />
                    <PackageReference Include="TorchSharp-cpu" Version="0.107.0" />
                  </ItemGroup>
                </Project>
                """);
            File.WriteAllText(Path.Combine(app, "Program.cs"), """
                using Vae;
                var model = VariationalAutoEncoder.Create(new VaeModelOptions { LatentDimensions = 2, HiddenUnits = 10 }, seed: 1);
                float[,] x = model.Sample(3, seed: 2);
                Console.WriteLine($"sampled {x.GetLength(0)} x {x.GetLength(1)}");
                """);
            string output = await Dotnet(app, "run", "-c", "Release");
            // libtorch loaded in the consumer's build: the package's load fix patched its copy of the natives.
            Assert.Contains("sampled 3 x 784", output);
        }
        finally
        {
            foreach (string id in new[] { "vae", "vae.core", "vae.data" })
            {
                string cached = Path.Combine(TestEnvironment.NuGetPackageRoot, id, version);
                if (Directory.Exists(cached)) Directory.Delete(cached, recursive: true);
            }
        }
    }
}
