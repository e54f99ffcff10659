using System.Runtime.CompilerServices;

[assembly: InternalsVisibleTo("Vae.Tests")]
[assembly: InternalsVisibleTo("Vae.Cli")]
