using System.Runtime.CompilerServices;

[assembly: InternalsVisibleTo("Vae.Tests")]
