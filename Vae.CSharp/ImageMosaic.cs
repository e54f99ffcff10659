using SkiaSharp;
using Vae.Core.Plots;

namespace Vae;

/// <summary>Image mosaics as PNG files: a grid of equally sized grey-scale images with values in [0, 1].</summary>
public static class ImageMosaic
{
    /// <summary>Writes the rows of <paramref name="images"/> (each <paramref name="height"/> x <paramref name="width"/>
    /// values, row-major) as a grid with <paramref name="columns"/> images per row to a PNG file (atomically).</summary>
    public static void SavePng(string path, float[,] images, int height, int width, int columns)
    {
        if (images.GetLength(1) != height * width)
            throw new ArgumentException($"images: expected rows of {height} x {width} = {height * width} values, got {images.GetLength(1)}", nameof(images));
        if (columns < 1) throw new ArgumentOutOfRangeException(nameof(columns), columns, "expected at least 1 column");
        var flat = new float[images.Length];
        Buffer.BlockCopy(images, 0, flat, 0, flat.Length * sizeof(float));
        var (gridWidth, gridHeight, pixels) = Mosaic.layout(images.GetLength(0), height, width, columns, flat);
        Vae.Core.Files.writeAtomically(path, EncodeGrey(gridWidth, gridHeight, pixels));
    }

    /// <summary>The shape of images of <paramref name="values"/> values: as given, else the paper's data sets' (28 rows:
    /// MNIST's 28 x 28 and Frey Face's 28 x 20; otherwise the nearest square's side), the width following the height.
    /// Throws when height x width is not <paramref name="values"/>.</summary>
    public static (int Height, int Width) Shape(int values, int? height = null, int? width = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(values, 1);
        int h = height ?? (width is int w0 && w0 > 0 && values % w0 == 0 ? values / w0 : values == 560 ? 28 : Math.Max(1, (int)Math.Round(Math.Sqrt(values))));
        int w = width ?? values / h;
        if (h < 1 || w < 1 || h * w != values)
            throw new ArgumentException($"image height x width: {h} x {w} is not the model's {values} values per image");
        return (h, w);
    }

    /// <summary>An 8-bit grey-scale image (row-major bytes) encoded as PNG by SkiaSharp.</summary>
    static byte[] EncodeGrey(int width, int height, byte[] pixels)
    {
        ScriptNatives.EnsureSkia();
        using var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Gray8, SKAlphaType.Opaque));
        for (int y = 0; y < height; y++)
            System.Runtime.InteropServices.Marshal.Copy(pixels, y * width, bitmap.GetPixels() + y * bitmap.RowBytes, width);
        using var image = SKImage.FromBitmap(bitmap);
        using var png = image.Encode(SKEncodedImageFormat.Png, 100);
        return png.ToArray();
    }
}
