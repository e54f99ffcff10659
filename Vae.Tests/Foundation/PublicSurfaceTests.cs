using System.Reflection;

namespace Vae.Tests.Foundation;

/// <summary>What a C# program sees: the façade's public types and the library's exceptions are in the Vae namespaces,
/// and none of their public members takes or returns an F# type.</summary>
public class PublicSurfaceTests
{
    static readonly Assembly FSharpCore = typeof(Microsoft.FSharp.Core.Unit).Assembly;

    static IEnumerable<Type> Mentioned(Type t) =>
        t.IsGenericType ? t.GetGenericArguments().SelectMany(Mentioned).Prepend(t.GetGenericTypeDefinition())
        : t.HasElementType ? Mentioned(t.GetElementType()!)
        : [t];

    static IEnumerable<string> FSharpTypesIn(Type type)
    {
        const BindingFlags flags = BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
        var signatures = type.GetMethods(flags).SelectMany(m => m.GetParameters().Select(p => p.ParameterType).Append(m.ReturnType))
            .Concat(type.GetConstructors(flags).SelectMany(c => c.GetParameters().Select(p => p.ParameterType)))
            .Concat(type.GetProperties(flags).Select(p => p.PropertyType));
        return signatures.SelectMany(Mentioned).Where(t => t.Assembly == FSharpCore || t.Namespace?.StartsWith("Vae.Core", StringComparison.Ordinal) == true)
            .Select(t => $"{type.Name}: {t.FullName}").Distinct();
    }

    [Fact]
    public void TheLibrarysExceptionsAreVaeTypesWithoutFSharpTypesInTheirMembers()
    {
        Type[] exceptions = [typeof(CheckpointException), typeof(NonFiniteBoundException), typeof(DataFormatException),
                             typeof(ChecksumMismatchException), typeof(DataUnavailableException), typeof(MemoryBudgetException),
                             typeof(EstimateNotConvergedException)];
        Assert.All(exceptions, t => Assert.Equal("Vae", t.Namespace));
        Assert.Empty(exceptions.SelectMany(FSharpTypesIn));
        var e = new DataUnavailableException("MNIST", ["cache: missing", "download: refused"]);
        Assert.Equal(["cache: missing", "download: refused"], e.Attempts);
        Assert.Null(new DataFormatException("f", "field", "a", "b").InnerException);
    }

    [Fact]
    public void TheFacadesPublicMembersTakeAndReturnNoFSharpOrCoreTypes()
    {
        // The check finds them where they are: the core's checkpoint record holds an F# map.
        Assert.NotEmpty(FSharpTypesIn(typeof(Vae.Core.CheckpointContents)));
        var facade = typeof(VariationalAutoEncoder).Assembly.GetExportedTypes();
        Assert.Empty(facade.SelectMany(FSharpTypesIn));
    }
}
